"""Text2Reward: reward code from the task text in one shot, with expert examples, refined from a critique.

Text2Reward (Xie et al., "Text2Reward: Reward shaping with language models for reinforcement
learning", 2023) asks once, with a compact description of the environment and, few-shot,
expert-written reward functions as examples; a person's critique of the trained policy then
drives a rewrite. Each call returns one candidate record (as :func:`generate_candidates` gives
it) and, given a ``run_dir``, writes it there with the reward it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewardlab._io import atomic_write_json
from rewardlab.llm import ChatClient, CodeReward, reward_messages
from rewardlab.search._candidates import GenerationConfig, generate_candidates, probe_batch
from rewardlab.search._context import EXPERT_EXAMPLES, env_context, expert_example


def few_shot_text(examples: Sequence[str]) -> str:
    """The examples section of a few-shot prompt.

    Example:
        >>> print(few_shot_text(["def compute_reward(obs, act, next_obs, terminated): ..."]).splitlines()[0])
        Expert-written reward functions for other tasks, in the same format:
    """
    blocks = [f"```python\n{code.strip()}\n```" for code in examples]
    return "Expert-written reward functions for other tasks, in the same format:\n" + "\n".join(blocks)


def critique_text(code: str, critique: str) -> str:
    """The refinement request: the reward as it stands and what a person said about its policy.

    Example:
        >>> print(critique_text("def compute_reward(obs, act, next_obs, terminated): ...", "It spins.").splitlines()[-2])
        Feedback on the policy trained with it: It spins.
    """
    if not isinstance(critique, str) or not critique.strip():
        raise ValueError(f"critique: expected a non-empty text, got {critique!r}")
    return (
        f"Reward function:\n```python\n{code.strip()}\n```\n"
        f"Feedback on the policy trained with it: {critique.strip()}\n"
        "Rewrite compute_reward to address the feedback."
    )


def text2reward_messages(
    task: str,
    env_id: str,
    *,
    examples: Sequence[str] | bool = False,
    code: str | None = None,
    critique: str | None = None,
    notes: str | None = None,
) -> list[dict[str, str]]:
    """The messages :func:`text2reward` sends: contract, environment, task, then examples and the critique.

    Raises:
        ValueError: ``critique`` without ``code`` or the other way round.

    Example:
        >>> messages = text2reward_messages("Swing up.", "Pendulum-v1", examples=True)
        >>> "def compute_reward" in messages[1]["content"] and "Expert-written" in messages[1]["content"]
        True
    """
    if (code is None) != (critique is None):
        raise ValueError("code, critique: expected both (a refinement) or neither, got one")
    shots = [expert_example(name) for name in EXPERT_EXAMPLES] if examples is True else list(examples or [])
    parts = []
    if shots:
        parts.append(few_shot_text(shots))
    if code is not None and critique is not None:
        parts.append(critique_text(code, critique))
    return reward_messages(task, env_context(env_id, notes), feedback="\n\n".join(parts) or None)


def text2reward(
    task: str,
    env_id: str,
    client: ChatClient,
    *,
    examples: Sequence[str] | bool = False,
    code: str | None = None,
    critique: str | None = None,
    generation: GenerationConfig | None = None,
    seed: int = 0,
    notes: str | None = None,
    run_dir: str | Path | None = None,
) -> dict[str, Any]:
    """One Text2Reward candidate: zero-shot, few-shot, or a refinement of ``code`` from ``critique``.

    Args:
        task: what the agent should do, in words.
        env_id: a gymnasium id (its layouts and ``ENV_NOTES`` describe it).
        client: the chat client.
        examples: reward functions shown as examples (few-shot); True takes every shipped
            expert example (``EXPERT_EXAMPLES``), False none (zero-shot).
        code: the reward to refine (with ``critique``).
        critique: what a person said about the policy trained on ``code``.
        generation: how the reply is asked for (default: greedy, constrained).
        seed: the sampling seed.
        notes: the env's index meanings, over ``ENV_NOTES``.
        run_dir: when given, ``text2reward.json`` (messages and candidate) and, for code that
            passed, ``reward.json`` are written there.

    Returns:
        The candidate record (``reply``, ``code``, ``errors``, ``status``) with ``messages``.

    Raises:
        ValueError: ``critique`` without ``code`` or the other way round.
    """
    messages = text2reward_messages(task, env_id, examples=examples, code=code, critique=critique, notes=notes)
    generation = generation if generation is not None else GenerationConfig(temperature=0.0)
    probe = probe_batch(env_id, generation.probe_transitions, seed)
    (candidate,) = generate_candidates(client, messages, 1, generation, seed=seed, probe=probe)
    candidate["messages"] = messages
    candidate["mode"] = "refine" if critique is not None else ("few-shot" if examples else "zero-shot")
    if run_dir is not None:
        folder = Path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / "text2reward.json", candidate)
        if candidate["status"] == "checked":
            origin = {"method": "text2reward", "mode": candidate["mode"], "model": client.model}
            CodeReward(candidate["code"], prompt=messages, origin=origin).save(folder / "reward.json")
    return candidate
