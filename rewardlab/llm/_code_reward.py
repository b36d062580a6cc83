"""``CodeReward``: generated reward code as a ``RewardFn`` like any other, computed in a sandbox."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab._io import atomic_write_json
from rewardlab.llm._contract import check_reward_code, extract_code
from rewardlab.llm._errors import RewardCodeError
from rewardlab.llm._sandbox import RewardOutput, Sandbox, SandboxLimits

CODE_REWARD_FORMAT = "rewardlab.code_reward"
"""The ``format`` field of a saved ``CodeReward`` file."""
CODE_REWARD_VERSION = 1


class CodeReward:
    """Generated reward code as a batched ``RewardFn(obs, acts, next_obs, dones) -> float32 [N]``.

    The code (``def compute_reward(obs, act, next_obs, terminated) -> (reward, components)``,
    see :func:`rewardlab.llm.contract_text`) passes the static checks here and then runs only in
    a :class:`Sandbox` worker, started on the first call and kept for the next ones: one batch
    per call, whatever N, so a vector env of E copies costs one round trip per step. ``dones``
    of the ``RewardFn`` call is the code's ``terminated``. Wrappers, distances (host path),
    shaping and sweeps take it unchanged; pickling it (a sweep's process pool) sends the code,
    and the receiving process starts its own worker.

    Args:
        code: the reward code.
        prompt: the messages (or text) that produced it, kept with it when saved.
        origin: where it came from (``{"model": ..., "endpoint": ..., "iteration": ...}``), JSON-able.
        limits: the sandbox's resource limits.

    Attributes:
        last_components: the named components ``{name: [N] float32}`` of the latest call.
        returns_checked_rewards: True: every call returns a fresh finite float32 ``[N]`` array
            (or raises), so the wrappers skip their own output checks.

    Raises:
        RewardCodeError: the static checks reject the code.

    Example:
        >>> import numpy as np
        >>> code = "import numpy as np\\ndef compute_reward(obs, act, next_obs, terminated):\\n"
        >>> code += "    effort = -np.square(act[:, 0])\\n    return effort, {'effort': effort}"
        >>> with CodeReward(code, origin={"by": "hand"}) as reward:
        ...     reward(np.zeros((3, 2)), np.array([[0.0], [1.0], [2.0]]), np.zeros((3, 2)), np.zeros(3, bool)).tolist()
        [-0.0, -1.0, -4.0]
    """

    returns_checked_rewards = True

    def __init__(
        self,
        code: str,
        *,
        prompt: list[dict[str, str]] | str | None = None,
        origin: dict[str, Any] | None = None,
        limits: SandboxLimits | None = None,
    ) -> None:
        if not isinstance(code, str):
            raise TypeError(f"code: expected the reward code as a str, got {type(code).__name__}")
        errors = check_reward_code(code)
        if errors:
            raise RewardCodeError(errors)
        if origin is not None:
            if not isinstance(origin, dict):
                raise TypeError(f"origin: expected a dict, got {type(origin).__name__}")
            json.dumps(origin)  # raises TypeError for values that cannot be saved
        self.code = code
        self.prompt = prompt
        self.origin = dict(origin or {})
        self.limits = limits if limits is not None else SandboxLimits()
        self.last_components: dict[str, np.ndarray] = {}
        self._sandbox: Sandbox | None = None

    @classmethod
    def from_reply(
        cls,
        reply: str,
        *,
        prompt: list[dict[str, str]] | str | None = None,
        origin: dict[str, Any] | None = None,
        limits: SandboxLimits | None = None,
    ) -> CodeReward:
        """The reward in a model's reply (``extract_code``, then the checks).

        Raises:
            RewardCodeError: no code in the reply, or the checks reject it.
        """
        return cls(extract_code(reply), prompt=prompt, origin=origin, limits=limits)

    def __repr__(self) -> str:
        return f"CodeReward({len(self.code.splitlines())} lines, origin={self.origin!r})"

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox that runs the code (created on first use)."""
        if self._sandbox is None:
            self._sandbox = Sandbox(self.code, limits=self.limits, check=False)  # checked in __init__
        return self._sandbox

    def evaluate(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> RewardOutput:
        """The reward ``[N]`` and its named components, float32.

        Raises:
            ValueError: ``dones`` is not of shape [N], N >= 1.
            RewardCodeError: the code failed in the sandbox (its structured errors).
        """
        output = self.sandbox(obs, acts, next_obs, dones)
        self.last_components = output.components
        return output

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        """Rewards ``[N]`` float32 of N transitions (see ``evaluate``)."""
        return self.evaluate(obs, acts, next_obs, dones).reward

    def close(self) -> None:
        """Stop the sandbox worker (a later call starts a fresh one)."""
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def __enter__(self) -> CodeReward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_sandbox"] = None
        state["last_components"] = {}
        return state

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able record ``save`` writes."""
        return {
            "format": CODE_REWARD_FORMAT,
            "version": CODE_REWARD_VERSION,
            "code": self.code,
            "prompt": self.prompt,
            "origin": self.origin,
            "limits": asdict(self.limits),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the code with its prompt, origin and limits to one JSON file (atomically).

        Example:
            >>> import tempfile, pathlib
            >>> code = "def compute_reward(obs, act, next_obs, terminated):\\n    return obs[:, 0], {}"
            >>> path = CodeReward(code, prompt="reward x").save(pathlib.Path(tempfile.mkdtemp()) / "r.json")
            >>> load_code_reward(path).prompt
            'reward x'
        """
        return atomic_write_json(path, self.to_dict())


def load_code_reward(path: str | os.PathLike) -> CodeReward:
    """Read a ``CodeReward`` written by ``CodeReward.save`` (the code is checked again).

    Raises:
        ValueError: the file is not a saved ``CodeReward`` of a known version.
        RewardCodeError: the stored code fails today's checks.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"path: cannot read a saved CodeReward from {str(path)!r}: {error}") from None
    if not isinstance(record, dict) or record.get("format") != CODE_REWARD_FORMAT:
        raise ValueError(f"path: {str(path)!r} is not a saved CodeReward (format {CODE_REWARD_FORMAT!r})")
    if record.get("version") != CODE_REWARD_VERSION:
        raise ValueError(
            f"path: {str(path)!r} has CodeReward file version {record.get('version')!r}, expected {CODE_REWARD_VERSION}"
        )
    limits = SandboxLimits(**record.get("limits", {}))
    return CodeReward(record["code"], prompt=record.get("prompt"), origin=record.get("origin"), limits=limits)
