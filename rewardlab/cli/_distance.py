"""``rewardlab distance A B``: the sample-based EPIC distance between two saved reward models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import gymnasium as gym

    from rewardlab._types import Transitions


METRICS = ("pearson", "1", "2", "inf")
"""Values of ``rewardlab distance --metric``: EPIC's Pearson distance (the default), or L1, L2, L∞."""


def coverage_from_spaces(
    observation_space: gym.Space, action_space: gym.Space, num_steps: int, seed: int
) -> Transitions:
    """Coverage transitions with s, a, s' drawn independently from the spaces (no env at hand)."""
    import numpy as np

    from rewardlab._types import Transitions

    observation_space.seed(seed)
    action_space.seed(seed + 1)
    obs = np.stack([observation_space.sample() for _ in range(num_steps)]).astype(np.float32)
    next_obs = np.stack([observation_space.sample() for _ in range(num_steps)]).astype(np.float32)
    acts = np.stack([action_space.sample() for _ in range(num_steps)])
    never = np.zeros(num_steps, bool)  # independent draws: no episode ends
    return Transitions(obs, acts, next_obs, never, never, np.full(num_steps, np.nan, np.float32))


def distance(
    model_a: Path = typer.Argument(..., help="First reward model (.rlab checkpoint)."),
    model_b: Path = typer.Argument(..., help="Second reward model (.rlab checkpoint)."),
    env_id: str = typer.Option(
        None,
        "--env",
        help="gymnasium id whose random-policy rollouts give the coverage distribution "
        "(default: sample s, a, s' from the models' spaces).",
    ),
    discount: float = typer.Option(0.99, min=0.0, max=1.0, help="γ of the canonicalisation."),
    transitions: int = typer.Option(2048, min=2, help="Coverage transitions per seed (N)."),
    samples: int = typer.Option(1024, min=1, help="Canonicalisation samples per seed (M)."),
    seeds: int = typer.Option(3, min=1, help="Independent repetitions for the confidence interval."),
    seed: int = typer.Option(0, help="Base seed."),
    metric: str = typer.Option(
        "pearson",
        help="One of: pearson (EPIC, the default), or an L_p distance after canonicalisation: 1, 2, inf.",
    ),
    rollout_steps: int = typer.Option(
        10_000, min=2, help="Random-policy steps collected for the coverage data (with --env)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a sentence."),
) -> None:
    """Compare two saved reward models with sample-based EPIC (mean and 95% interval over seeds)."""
    import gymnasium as gym
    from rich.console import Console

    from rewardlab.cli._common import RUNTIME_ERROR, check_env_id, fail
    from rewardlab.distances import sample_epic_distance
    from rewardlab.rewards import as_reward_fn, load_reward_model, space_to_dict
    from rewardlab.rl import rollout_transitions

    console = Console()
    if metric not in METRICS:
        fail(f"metric: expected one of pearson (EPIC, the default), 1, 2, inf, got {metric!r}")
    try:
        if env_id:
            check_env_id(env_id)
        first = load_reward_model(model_a)
        second = load_reward_model(model_b)
        if space_to_dict(first[0].observation_space) != space_to_dict(second[0].observation_space) or space_to_dict(
            first[0].action_space
        ) != space_to_dict(second[0].action_space):
            raise ValueError("model_b: expected the observation and action spaces of model_a, got different ones")
        metric_value = metric if metric in ("pearson", "inf") else int(metric)
        if env_id:
            coverage = rollout_transitions(env_id, rollout_steps, seed=seed)
            source = f"random-policy rollouts of {env_id}"
        else:
            coverage = coverage_from_spaces(first[0].observation_space, first[0].action_space, rollout_steps, seed)
            source = "independent samples of the observation and action spaces"
        result = sample_epic_distance(
            as_reward_fn(*first),
            as_reward_fn(*second),
            coverage,
            discount,
            num_transitions=transitions,
            num_samples=samples,
            num_seeds=seeds,
            seed=seed,
            metric=metric_value,
        )
    except (ValueError, gym.error.Error) as error:
        fail(str(error))
    except OSError as error:
        fail(str(error), RUNTIME_ERROR)
    if as_json:
        print(
            json.dumps(
                {
                    "distance": result.mean,
                    "low": result.low,
                    "high": result.high,
                    "per_seed": result.per_seed.tolist(),
                    "metric": metric,
                    "coverage": source,
                }
            )
        )
        return
    name = "EPIC" if metric == "pearson" else f"L{metric} after EPIC canonicalisation"
    console.print(
        f"{name} distance {result.mean:.4f} (95% CI {result.low:.4f} – {result.high:.4f}, {seeds} seeds; "
        f"N={transitions}, M={samples}; coverage: {source})"
    )
