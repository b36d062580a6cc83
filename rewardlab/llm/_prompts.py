"""Prompt pieces built from the environment and from a candidate's fate: layouts, errors, reward reflection.

Eureka (Ma et al. 2023) feeds a failed candidate's error back with a request to fix it, and a
trained candidate's "reward reflection" (each component's values along training with their
max, mean and min, and the task score) with a request to improve it; Text2Reward (Xie et al.
2023) describes the environment compactly. These functions write those texts for
``reward_messages(..., feedback=...)``.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardlab.llm._errors import CodeError


def describe_space(space: Any, name: str) -> str:
    """One line per array a gymnasium space gives the reward: shape, dtype and bounds.

    Args:
        space: a ``gymnasium.spaces`` Box, Discrete, MultiDiscrete, MultiBinary or Dict.
        name: the argument it arrives as (``obs``, ``act``).

    Example:
        >>> import gymnasium as gym
        >>> print(describe_space(gym.spaces.Box(-1.0, 1.0, (2,)), "act"))
        act: float32 array [N, 2]; act[:, 0] in [-1, 1]; act[:, 1] in [-1, 1]
        >>> print(describe_space(gym.spaces.Discrete(3), "act"))
        act: integer array [N], values 0 .. 2
    """
    kind = type(space).__name__
    if kind == "Dict":
        return "\n".join(describe_space(sub, f"{name}[{key!r}]") for key, sub in space.spaces.items())
    if kind == "Discrete":
        return f"{name}: integer array [N], values {int(space.start)} .. {int(space.start) + int(space.n) - 1}"
    if kind == "MultiDiscrete":
        return (
            f"{name}: integer array [N, {len(space.nvec)}], column i in 0 .. nvec[i] - 1, nvec = {space.nvec.tolist()}"
        )
    if kind == "MultiBinary":
        return f"{name}: 0/1 array [N, {space.n}]"
    if kind == "Box":
        shape = ", ".join(str(size) for size in space.shape)
        line = f"{name}: {np.dtype(space.dtype).name} array [N, {shape}]"
        if len(space.shape) == 1 and space.shape[0] <= 32:
            bounds = [
                f"{name}[:, {index}] in [{_number(low)}, {_number(high)}]"
                for index, (low, high) in enumerate(zip(space.low, space.high, strict=True))
            ]
            line += "; " + "; ".join(bounds)
        return line
    raise ValueError(f"space: expected a Box, Discrete, MultiDiscrete, MultiBinary or Dict space, got {kind}")


def describe_env(env: Any, notes: str = "", source: bool = False) -> str:
    """The environment as the prompt gives it: its id, the observation and action layouts, notes, code.

    Args:
        env: a gymnasium env (its ``spec.id``, ``observation_space``, ``action_space``).
        notes: what each index means, units, episode length: text from the env's documentation.
        source: append the env's observation code (:func:`env_source`) in a fenced block.

    Example:
        >>> import gymnasium as gym
        >>> print(describe_env(gym.make("CartPole-v1")).splitlines()[2])
        act: integer array [N], values 0 .. 1
    """
    spec = getattr(env, "spec", None)
    name = spec.id if spec is not None else type(getattr(env, "unwrapped", env)).__name__
    lines = [
        f"gymnasium {name}.",
        describe_space(env.observation_space, "obs") + " (next_obs likewise)",
        describe_space(env.action_space, "act"),
    ]
    if notes.strip():
        lines.append(notes.strip())
    code = env_source(env) if source else ""
    if code:
        lines.append("The environment's observation code:\n```python\n" + code + "\n```")
    return "\n".join(lines)


_OBSERVATION_METHODS = ("_get_obs", "get_obs", "_get_observation", "_observation")
_LEFT_OUT = ("reward", "render", "logger")  # the reward itself, drawing and warnings say nothing of the state


class _DropReward(ast.NodeTransformer):
    """Removes docstrings, asserts and statements naming a reward, rendering or logging (Eureka shows the env's code without its reward)."""

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if not isinstance(body, list):
                continue
            kept = [
                statement
                for statement in body
                if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant))
                and not isinstance(statement, ast.Assert)
                and not any(word in ast.unparse(statement).lower() for word in _LEFT_OUT)
            ]
            if field == "body" and not kept:
                kept = [ast.Pass()]
            setattr(node, field, kept)
        return node


def env_source(env: Any, max_chars: int = 3000) -> str:
    """A compact form of the env's own code, as Eureka and Text2Reward give it: how it builds observations.

    The env class's observation method (``_get_obs`` and the like) where it has one, else its
    ``step``; docstrings, comments, asserts, and statements that name a reward, rendering or
    logging are left out (the model is to write the reward, not copy it). Code longer than
    ``max_chars`` is cut there.

    Args:
        env: a gymnasium env (its ``unwrapped`` class is read).
        max_chars: the most characters returned.

    Returns:
        Python source, or an empty string when the class's source cannot be read (a compiled env).

    Example:
        >>> import gymnasium as gym
        >>> print(env_source(gym.make("Pendulum-v1")))
        class PendulumEnv:
            def _get_obs(self):
                theta, thetadot = self.state
                return np.array([np.cos(theta), np.sin(theta), thetadot], dtype=np.float32)
    """
    cls = type(getattr(env, "unwrapped", env))
    names = [name for name in _OBSERVATION_METHODS if callable(getattr(cls, name, None))][:1] or ["step"]
    methods = []
    for name in names:
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(getattr(cls, name))))
        except (OSError, TypeError, SyntaxError):
            return ""
        methods.append(ast.unparse(_DropReward().visit(tree)))
    text = f"class {cls.__name__}:\n" + textwrap.indent("\n\n".join(methods), "    ")
    return text[:max_chars]


def error_feedback(errors: Sequence[CodeError], code: str | None = None) -> str:
    """Eureka's feedback for a candidate that failed: its errors, and the request to fix them.

    Example:
        >>> print(error_feedback([CodeError("NameError", "name 'theta' is not defined", 3)]))
        The reward function above failed:
        NameError: line 3: name 'theta' is not defined
        Fix the error and write a new, improved compute_reward.
    """
    if not errors:
        raise ValueError("errors: expected at least one CodeError, got none")
    text = ""
    if code is not None:
        text += f"Reward function:\n```python\n{code.strip()}\n```\n"
    text += "The reward function above failed:\n" + "\n".join(str(error) for error in errors)
    return text + "\nFix the error and write a new, improved compute_reward."


def reward_reflection(
    components: Mapping[str, Sequence[float]],
    fitness: Sequence[float] | float,
    *,
    fitness_name: str = "task score",
    points: int = 10,
) -> str:
    """Eureka's reward reflection: each component's values along training, their max, mean and min, the score.

    Args:
        components: component name -> its mean value per training checkpoint, in order.
        fitness: the task's own metric per checkpoint (or its final value).
        fitness_name: what the metric is (``"task score"``, ``"true return"``, ``"success rate"``).
        points: how many evenly spaced checkpoints each line shows.

    Example:
        >>> print(reward_reflection({"upright": [-3.0, -1.0, -0.5]}, [-900.0, -400.0, -150.0], points=3))
        We trained a policy with the reward function above and tracked its components along training:
        upright: [-3.00, -1.00, -0.50], max -0.50, mean -1.50, min -3.00
        task score: [-900.00, -400.00, -150.00], max -150.00, mean -483.33, min -900.00
        Analyse each component: rewrite or rescale one whose values barely change, drop one that does not help the task score, and write a new, improved compute_reward.
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise ValueError(f"points: expected an integer >= 1, got {points!r}")
    lines = ["We trained a policy with the reward function above and tracked its components along training:"]
    for name, values in components.items():
        lines.append(_series(name, values, points))
    lines.append(_series(fitness_name, np.atleast_1d(np.asarray(fitness, float)), points))
    lines.append(
        "Analyse each component: rewrite or rescale one whose values barely change, drop one that does not "
        f"help the {fitness_name}, and write a new, improved compute_reward."
    )
    return "\n".join(lines)


def _series(name: str, values: Sequence[float] | np.ndarray, points: int) -> str:
    array = np.asarray(values, float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name}: expected a non-empty sequence of numbers, got shape {array.shape}")
    picks = array[np.unique(np.linspace(0, array.size - 1, min(points, array.size)).round().astype(int))]
    shown = ", ".join(f"{value:.2f}" for value in picks)
    return f"{name}: [{shown}], max {array.max():.2f}, mean {array.mean():.2f}, min {array.min():.2f}"


def _number(value: float) -> str:
    return f"{float(value):g}"
