"""Changed dynamics: the same task with heavier or lighter bodies, for reward-transfer experiments.

AIRL's claim (Fu et al., 2018) is that a state-only reward learned under one dynamics still
induces the expert's behaviour under another. :class:`ChangedDynamics` makes the other
dynamics from a registered env without a new registration: it scales the masses of the
physical bodies once, when the wrapper is made, and leaves observations, actions, rewards
and episode ends alone.

* Pendulum-v1: the pole's mass ``m`` (the torque then turns it less: θ̈ = 3g/(2l) sin θ + 3u/(ml²)).
* MuJoCo envs: ``model.body_mass`` of the named bodies (all bodies but the world when none are named).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np


class ChangedDynamics(gym.Wrapper):
    """``env`` with its bodies' masses multiplied by ``mass_scale``.

    Args:
        env: a Pendulum-v1 or MuJoCo env (wrapped or not).
        mass_scale: factor > 0 on the masses.
        bodies: MuJoCo body names to scale; empty for every body. Pendulum has one body and
            takes none.

    Attributes:
        original_masses: the masses before scaling (Pendulum: ``[m]``; MuJoCo: ``model.body_mass``).

    Raises:
        ValueError: ``mass_scale`` is not a positive finite number, a body name is unknown, or
            the env has neither a pendulum mass nor a MuJoCo model.

    Example:
        >>> env = ChangedDynamics(gym.make("Pendulum-v1"), mass_scale=1.5)
        >>> float(env.unwrapped.m)
        1.5
    """

    def __init__(self, env: gym.Env, mass_scale: float, bodies: Sequence[str] = ()) -> None:
        super().__init__(env)
        if isinstance(mass_scale, bool) or not isinstance(mass_scale, int | float) or not np.isfinite(mass_scale):
            raise ValueError(f"mass_scale: expected a finite number > 0, got {mass_scale!r}")
        if mass_scale <= 0:
            raise ValueError(f"mass_scale: expected a finite number > 0, got {mass_scale!r}")
        if isinstance(bodies, str):
            raise ValueError(f"bodies: expected a sequence of body names, got the string {bodies!r}")
        self.mass_scale = float(mass_scale)
        self.bodies = tuple(bodies)
        base: Any = env.unwrapped
        model = getattr(base, "model", None)
        if model is not None and hasattr(model, "body_mass"):
            self.original_masses = np.array(model.body_mass, copy=True)
            ids = self._body_ids(model)
            model.body_mass[ids] = self.original_masses[ids] * self.mass_scale
        elif hasattr(base, "m"):
            if self.bodies:
                raise ValueError(f"bodies: {type(base).__name__} has one body and takes no names, got {self.bodies!r}")
            self.original_masses = np.array([base.m], dtype=np.float64)
            base.m = float(base.m) * self.mass_scale
        else:
            raise ValueError(
                f"env: expected Pendulum-v1 or a MuJoCo env (a pole mass or a model with body masses), got {type(base).__name__}"
            )

    def _body_ids(self, model: Any) -> np.ndarray:
        import mujoco

        if not self.bodies:
            return np.arange(1, model.nbody)
        ids = []
        for name in self.bodies:
            index = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
            if index < 0:
                names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, i) for i in range(1, model.nbody)]
                raise ValueError(f"bodies: unknown body {name!r}; the model has {names}")
            ids.append(index)
        return np.asarray(ids)
