"""What a sweep runs: a target function, a frozen dataclass of arguments, and the values to vary.

A sweep is the Cartesian product of a grid of field values, optionally crossed with
random samples of other fields (random search, Bergstra & Bengio 2012). Each point is
one *run*: a copy of the base arguments with the varied fields replaced. A run's
*design* is everything that varies except the seed, so runs of one design differ only
by seed; run names encode environment, design and seed and are stable across reruns,
which is what makes a killed sweep resumable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rewardlab.sweeps._coerce import args_to_builtin, coerce, field_types, import_target, to_builtin
from rewardlab.sweeps._run import RunSpec
from rewardlab.sweeps._runner import run_sweep
from rewardlab.sweeps._spaces import RandomSearch

RUN_OPTIONS = ("backend", "workers", "threads_per_run", "run_timeout", "fresh_process", "compile_cache")
"""Options of :func:`run_sweep` a sweep (or a sweep file's ``[options]`` table) may set."""


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A sweep: ``fn(args)`` for every combination of ``grid`` values (× ``random`` samples).

    Attributes:
        fn: the target, ``fn(args) -> Mapping[str, float]`` of final metrics, or
            ``fn(args, logger=...)`` to also log curves (see :class:`RunLogger`). A module-level
            function, or a ``"module:function"`` string.
        base: a frozen dataclass instance holding every argument's default for this sweep.
        grid: field name -> values; the sweep runs their Cartesian product.
        random: optional :func:`random_search` over other fields, crossed with ``grid``.
        name: the sweep's name (default: the target's name, or its module's for ``main``).
        seed_field: the argument that holds the seed; runs differing only by it share a design.
        options: how to run it by default: keyword arguments of :func:`run_sweep` (``backend``,
            ``workers``, ``threads_per_run``, ``run_timeout``, ``fresh_process``,
            ``compile_cache``); those given to :meth:`run` take precedence.

    Example:
        >>> from experiments.bandit import Args, main
        >>> sweep = Sweep(main, Args(num_steps=20), grid={"teacher": ["oracle", "mistake"], "seed": range(2)})
        >>> [run.name for run in sweep.runs()]  # doctest: +NORMALIZE_WHITESPACE
        ['teacher=oracle__seed0', 'teacher=oracle__seed1', 'teacher=mistake__seed0', 'teacher=mistake__seed1']
        >>> sweep.name
        'bandit'
    """

    fn: Callable[..., Any] | str
    base: Any
    grid: Mapping[str, Sequence[Any]] = dataclasses.field(default_factory=dict)
    random: RandomSearch | None = None
    name: str | None = None
    seed_field: str = "seed"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (dataclasses.is_dataclass(self.base) and not isinstance(self.base, type)):
            raise ValueError(
                f"base: expected a dataclass instance of the target's arguments, got {type(self.base).__name__}"
            )
        if isinstance(self.fn, str):
            object.__setattr__(self, "fn", import_target(self.fn, "fn"))
        if not callable(self.fn):
            raise ValueError(f"fn: expected a callable or 'module:function', got {self.fn!r}")
        unknown = [name for name in self.options if name not in RUN_OPTIONS]
        if unknown:
            raise ValueError(f"options.{unknown[0]}: unknown option; expected one of {', '.join(RUN_OPTIONS)}")
        object.__setattr__(self, "options", dict(self.options))
        hints = field_types(type(self.base))
        grid = {}
        for name, values in dict(self.grid).items():
            if name not in hints:
                raise ValueError(f"grid.{name}: not a field of {type(self.base).__name__}; fields: {', '.join(hints)}")
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | range | tuple | list):
                raise ValueError(f"grid.{name}: expected a list of values, got {values!r}")
            values = [coerce(value, hints[name], f"grid.{name}") for value in values]
            if not values:
                raise ValueError(f"grid.{name}: expected at least one value, got an empty list")
            grid[name] = tuple(values)
        object.__setattr__(self, "grid", grid)
        if self.random is not None:
            for name in self.random.space:
                if name not in hints:
                    raise ValueError(
                        f"random.{name}: not a field of {type(self.base).__name__}; fields: {', '.join(hints)}"
                    )
                if name in grid:
                    raise ValueError(f"random.{name}: also varied by grid; vary a field by one of them")
        if self.name is None:  # experiments/<study>.py:main -> "<study>"
            fn_name = getattr(self.fn, "__name__", "sweep")
            object.__setattr__(self, "name", _module_tail(self.fn) if fn_name == "main" else fn_name)

    @property
    def target(self) -> str:
        """``"module:function"`` of the target."""
        fn = self.fn
        assert not isinstance(fn, str)  # __post_init__ imports a "module:function" target
        return f"{fn.__module__}:{fn.__qualname__}"

    def run(self, out_dir: str | Path, **options: Any) -> Any:
        """Run the sweep into ``out_dir`` and return its results table; see :func:`run_sweep` for ``options``."""
        return run_sweep(self, out_dir, **{**self.options, **options})

    def manifest(self) -> dict[str, Any]:
        """The sweep's description as JSON-ready values (``sweep.json`` adds the backend and the runs)."""
        return {
            "name": self.name,
            "target": self.target,
            "args_class": f"{type(self.base).__module__}:{type(self.base).__qualname__}",
            "base": args_to_builtin(self.base),
            "grid": {name: [to_builtin(v) for v in values] for name, values in self.grid.items()},
            "random": None
            if self.random is None
            else {
                "num_samples": self.random.num_samples,
                "seed": self.random.seed,
                "space": {k: repr(v) for k, v in self.random.space.items()},
            },
            "seed_field": self.seed_field,
        }

    def runs(self) -> list[RunSpec]:
        """Every run of the sweep, in a fixed order (designs outer, seeds inner)."""
        hints = field_types(type(self.base))
        samples = self.random.samples() if self.random is not None else [{}]
        seed_values = self.grid.get(self.seed_field)
        design_grid = {name: values for name, values in self.grid.items() if name != self.seed_field}
        points = []
        for sample in samples:
            for combo in itertools.product(*design_grid.values()):
                design = dict(zip(design_grid, combo, strict=True))
                design.update({name: coerce(value, hints[name], f"random.{name}") for name, value in sample.items()})
                for seed in seed_values if seed_values is not None else [None]:
                    overrides = dict(design)
                    if seed is not None:
                        overrides[self.seed_field] = seed
                    points.append(overrides)
        env_field = _env_field(self.base)
        designs = [{k: v for k, v in overrides.items() if k != self.seed_field} for overrides in points]
        labels = design_names(designs, env_field)
        runs, seen = [], set()
        for overrides, design_items, design_name in zip(points, designs, labels, strict=True):
            try:
                args = dataclasses.replace(self.base, **overrides)
            except (TypeError, ValueError) as error:
                raise ValueError(f"grid: the run {overrides} has invalid arguments: {error}") from None
            seed = int(getattr(args, self.seed_field, 0) or 0)
            parts = []
            if env_field is not None and env_field not in design_items:
                parts.append(str(getattr(args, env_field)))
            parts += [design_name if design_items else "", f"seed{seed}"]
            name = _safe_name("__".join(p for p in parts if p))
            if name in seen:
                name = f"{name}__{_digest(overrides)}"
            seen.add(name)
            runs.append(RunSpec(name, args, design_name, seed, overrides))
        return runs


# Run naming -------------------------------------------------------------------------------------


def _env_field(base: Any) -> str | None:
    for name in ("env_id", "env"):
        if any(f.name == name for f in dataclasses.fields(base)):
            return name
    return None


def _module_tail(fn: Any) -> str:
    return str(getattr(fn, "__module__", "sweep")).rsplit(".", 1)[-1]


def format_value(value: Any, digits: int = 4) -> str:
    """A varied value as it reads in a run or design name: short floats as written, others to ``digits`` digits.

    Example:
        >>> format_value(0.1), format_value(1e-4), format_value(1 / 3), format_value((64, 64))
        ('0.1', '0.0001', '0.3333', '64-64')
        >>> format_value(0.123456789), format_value(0.123456789, digits=9)
        ('0.1235', '0.123456789')
    """
    if isinstance(value, float):
        return (
            f"{value:.{digits}g}"
            if (value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5)) or len(repr(value)) > 8
            else repr(value)
        )
    if isinstance(value, (list, tuple)):
        return "-".join(format_value(v, digits) for v in value)
    return str(value)


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value] if math.isfinite(value) else []
    if isinstance(value, (list, tuple)):
        return [f for v in value for f in _floats(v)]
    return []


def _digits(values: list[Any]) -> int:
    """The fewest significant digits (at least 4) at which distinct floats among ``values`` read differently.

    17 digits tell any two distinct doubles apart (``repr`` round-trips with at most 17).
    """
    floats = {f for value in values for f in _floats(value)}
    digits = 4
    while digits < 17 and len({format_value(f, digits) for f in floats}) < len(floats):
        digits += 1
    return digits


def design_names(designs: list[dict[str, Any]], env_field: str | None) -> list[str]:
    """A name per design: ``field=value`` pairs, the environment bare and first, ``base`` when nothing varies.

    Distinct designs get distinct names: floats read with 4 significant digits, or as many
    more as a field needs to tell its values apart (``lr=0.123456789`` and
    ``lr=0.123456788``, not twice ``lr=0.1235``); designs that would still share a name
    (values whose text is the same, like the string ``"1"`` and the integer 1) get a short
    digest of their values appended.
    """
    fields = list(dict.fromkeys(name for design in designs for name in design))
    digits = {name: _digits([design[name] for design in designs if name in design]) for name in fields}
    names = []
    for design in designs:
        # the environment reads best bare and first: "HalfCheetah-v5__teacher=mistake"
        ordered = sorted(design.items(), key=lambda item: item[0] != env_field)
        parts = [
            format_value(v, digits[k]) if k == env_field else f"{k}={format_value(v, digits[k])}" for k, v in ordered
        ]
        names.append("__".join(parts) or "base")
    identities: dict[str, set[str]] = {}
    for name, design in zip(names, designs, strict=True):
        identities.setdefault(name, set()).add(_identity(design))
    return [
        f"{name}__{_digest(_identity(design))}" if len(identities[name]) > 1 else name
        for name, design in zip(names, designs, strict=True)
    ]


def _identity(design: dict[str, Any]) -> str:
    return json.dumps({k: [type(v).__name__, to_builtin(v)] for k, v in design.items()}, sort_keys=True, default=repr)


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.=+\-]+", "-", name)
    if len(name) > 150:
        name = f"{name[:130]}__{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name


def _digest(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]
