"""The Eureka study (``experiments/eureka.py``) end to end on HalfCheetah-v5, against a stand-in endpoint.

The stand-in answers every request with the true reward written to the contract, so the study's
path on a MuJoCo task is exercised without a model: generation, checks, the sandbox probe, PPO
on the candidate and on the three baselines, the fitness, and the EPIC distance of the best
reward to the true one (zero: it is the true reward).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments.eureka import BASELINES, TASKS, Args, main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chat_standin import ChatStandIn


@pytest.mark.slow
def test_halfcheetah_study_trains_candidates_and_baselines_and_measures_epic(tmp_path):
    reply = "```python\n" + BASELINES["HalfCheetah-v5"]["true"] + "```"
    served = ChatStandIn(lambda body: (200, reply))
    args = Args(
        env_id="HalfCheetah-v5",
        iterations=1,
        candidates=1,
        total_timesteps=256,
        eval_episodes=1,
        constrained=False,
        base_url=served.url,
        model="stand-in",
        out_dir=tmp_path,
    )
    try:
        summary = main(args)
    finally:
        served.close()
    assert summary["env_id"] == "HalfCheetah-v5" and summary["pass_rate_per_iteration"] == [1.0]
    assert np.isfinite(summary["best_fitness"]) and summary["fitness_per_iteration"] == [summary["best_fitness"]]
    assert set(summary["baselines"]) == {"sparse", "true", "hand"}
    assert all(np.isfinite(value) for value in summary["baselines"].values())
    assert summary["epic_best_vs_true"] == pytest.approx(0.0, abs=1e-3)
    assert json.loads((tmp_path / args.name / "summary.json").read_text())["best_fitness"] == summary["best_fitness"]
    prompt = served.requests[0]["messages"][-1]["content"]
    assert TASKS["HalfCheetah-v5"] in prompt and "HalfCheetah" in prompt  # the env's own task, not the pendulum's
