"""Simulated teachers by name: the B-Pref presets and the preference models beyond them.

``make_teacher("mistake")`` is what a study's ``--teacher`` argument turns into. The
registry sits above the teacher modules (``_teachers``: B-Pref stages and
``SimulatedTeacher``; ``_heron``: the HERON comparator), so that those two know nothing of
each other or of the names given to them here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from rewardlab.preferences._heron import HeronTeacher
from rewardlab.preferences._teachers import SimulatedTeacher

TEACHER_PRESETS: dict[str, dict[str, float]] = {
    "oracle": {},
    "stochastic": {"rationality": 1.0},
    "myopic": {"gamma": 0.9},
    "skip": {"skip_quantile": 0.1},
    "equal": {"equal_quantile": 0.1},
    "mistake": {"eps_mistake": 0.1},
}
"""B-Pref's simulated teachers by name: the ``SimulatedTeacher`` arguments each sets."""
TEACHER_MODELS = ("regret", "heron")
"""Teachers beyond B-Pref's partial-return presets; they need extra arguments (see ``make_teacher``)."""


TEACHER_FACTORIES: dict[str, Callable[..., Any]] = {}
"""Teachers registered by packages above this one (``register_teacher``): ``human`` by ``rewardlab.labelling``."""


def register_teacher(name: str, factory: Callable[..., Any]) -> None:
    """Make ``make_teacher(name, **kwargs)`` return ``factory(**kwargs)``; presets and models keep their names.

    Raises:
        ValueError: ``name`` is a preset or a preference model.
    """
    if name in TEACHER_PRESETS or name in TEACHER_MODELS:
        raise ValueError(f"name: {name!r} is a built-in teacher, expected another name")
    TEACHER_FACTORIES[name] = factory


def _check_overrides(cls: type, overrides: dict[str, Any]) -> None:
    fields = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"overrides: unknown {cls.__name__} fields {unknown}, expected some of {sorted(fields)}")


def make_teacher(name: str, **overrides: Any) -> Any:
    """The simulated teacher called ``name``, with optional field overrides.

    B-Pref presets (``SimulatedTeacher``): ``oracle``; ``stochastic`` (β = 1); ``myopic`` (γ = 0.9);
    ``skip`` (pairs with both returns below the batch's 10% return quantile); ``equal`` (0.5 when
    |R¹ − R²| is below the batch's 10% quantile); ``mistake`` (ε = 0.1). Preference models:
    ``regret`` (a ``SimulatedTeacher`` deciding on the true reward's regret; pass
    ``advantage_fn=``, and ``rationality=`` for a Boltzmann-rational one) and ``heron`` (a
    ``HeronTeacher`` over reward factors; pass ``spec=`` a ``FactorSpec`` and optionally
    ``sigmas=``). Teachers registered with ``register_teacher``: ``human`` (``import rewardlab.labelling``;
    pass ``run_dir=``, a ``HumanTeacher`` asking people through the labelling server).

    Raises:
        ValueError: unknown ``name`` or override.

    Example:
        >>> make_teacher("mistake").eps_mistake
        0.1
    """
    if name == "heron":
        _check_overrides(HeronTeacher, overrides)
        return HeronTeacher(**overrides)
    if name == "regret":
        return make_teacher("oracle", **{"preference_model": "regret", **overrides})
    if name in TEACHER_FACTORIES:
        return TEACHER_FACTORIES[name](**overrides)
    if name == "human":
        raise ValueError("name: the 'human' teacher is registered by `import rewardlab.labelling`; import it first")
    if name not in TEACHER_PRESETS:
        known = tuple(TEACHER_PRESETS) + TEACHER_MODELS + tuple(TEACHER_FACTORIES)
        raise ValueError(f"name: expected one of {known}, got {name!r}")
    _check_overrides(SimulatedTeacher, overrides)
    return SimulatedTeacher(**{**TEACHER_PRESETS[name], **overrides})
