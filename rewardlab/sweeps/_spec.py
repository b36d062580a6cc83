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
import importlib
import inspect
import itertools
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Union

import numpy as np

# Distributions of random search ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Uniform:
    """Uniform on [low, high)."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """log-uniform on [low, high): exp(U(log low, log high)); both bounds > 0."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclasses.dataclass(frozen=True)
class IntUniform:
    """Uniform on the integers low, ..., high (inclusive)."""

    low: int
    high: int

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))


@dataclasses.dataclass(frozen=True)
class Choice:
    """Uniform over ``values``."""

    values: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]


Distribution = Union[Uniform, LogUniform, IntUniform, Choice]


def uniform(low: float, high: float) -> Uniform:
    """Uniform distribution on [low, high) for :func:`random_search`."""
    if not high > low:
        raise ValueError(f"uniform: expected low < high, got low={low!r}, high={high!r}")
    return Uniform(float(low), float(high))


def loguniform(low: float, high: float) -> LogUniform:
    """Log-uniform distribution on [low, high) for :func:`random_search` (learning rates, coefficients)."""
    if not 0 < low < high:
        raise ValueError(f"loguniform: expected 0 < low < high, got low={low!r}, high={high!r}")
    return LogUniform(float(low), float(high))


def randint(low: int, high: int) -> IntUniform:
    """Uniform integers low..high inclusive for :func:`random_search`."""
    if not int(low) <= int(high):
        raise ValueError(f"randint: expected low <= high, got low={low!r}, high={high!r}")
    return IntUniform(int(low), int(high))


def choice(values: Sequence[Any]) -> Choice:
    """Uniform choice among ``values`` for :func:`random_search`."""
    values = tuple(values)
    if not values:
        raise ValueError("choice: expected at least one value, got none")
    return Choice(values)


@dataclasses.dataclass(frozen=True)
class RandomSearch:
    """``num_samples`` joint samples of the fields in ``space``, drawn with ``seed``."""

    space: Mapping[str, Distribution]
    num_samples: int
    seed: int = 0

    def samples(self) -> list[dict[str, Any]]:
        rng = np.random.default_rng(self.seed)
        return [{name: dist.sample(rng) for name, dist in self.space.items()} for _ in range(self.num_samples)]


def random_search(space: Mapping[str, Distribution], num_samples: int, seed: int = 0) -> RandomSearch:
    """Random search over ``space`` (field name -> distribution), crossed with the sweep's grid.

    Example:
        >>> search = random_search({"learning_rate": loguniform(1e-4, 1e-2)}, num_samples=3)
        >>> [round(s["learning_rate"], 5) for s in search.samples()]
        [0.00188, 0.00035, 0.00012]
    """
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples: expected an integer >= 1, got {num_samples!r}")
    for name, dist in space.items():
        if not hasattr(dist, "sample"):
            raise ValueError(f"space.{name}: expected a distribution (uniform, loguniform, randint, choice), got {dist!r}")
    return RandomSearch(dict(space), num_samples, int(seed))


# Runs -------------------------------------------------------------------------------------------


class RunSpec(NamedTuple):
    """One run of a sweep."""

    name: str  # folder name: env, design and seed, e.g. "Pendulum-v1__teacher=mistake__seed3"
    args: Any  # the frozen dataclass instance the target receives
    design: str  # the varied fields except the seed, e.g. "teacher=mistake"; "base" if none vary
    seed: int  # the run's seed (0 when the arguments have no seed field)
    overrides: dict[str, Any]  # varied field -> value of this run


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

    Example:
        >>> from experiments.bandit import Args, main
        >>> sweep = Sweep(main, Args(steps=20), grid={"teacher": ["oracle", "mistake"], "seed": range(2)})
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

    def __post_init__(self) -> None:
        if not (dataclasses.is_dataclass(self.base) and not isinstance(self.base, type)):
            raise ValueError(f"base: expected a dataclass instance of the target's arguments, got {type(self.base).__name__}")
        if isinstance(self.fn, str):
            object.__setattr__(self, "fn", import_target(self.fn, "fn"))
        if not callable(self.fn):
            raise ValueError(f"fn: expected a callable or 'module:function', got {self.fn!r}")
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
                    raise ValueError(f"random.{name}: not a field of {type(self.base).__name__}; fields: {', '.join(hints)}")
                if name in grid:
                    raise ValueError(f"random.{name}: also varied by grid; vary a field by one of them")
        if self.name is None:  # experiments/<study>.py:main -> "<study>"
            fn_name = getattr(self.fn, "__name__", "sweep")
            object.__setattr__(self, "name", _module_tail(self.fn) if fn_name == "main" else fn_name)

    @property
    def target(self) -> str:
        """``"module:function"`` of the target."""
        return f"{self.fn.__module__}:{self.fn.__qualname__}"

    def run(self, out_dir: str | Path, **options: Any) -> Any:
        """Run the sweep into ``out_dir`` and return its results table; see :func:`run_sweep` for ``options``."""
        from rewardlab.sweeps._runner import run_sweep

        return run_sweep(self, out_dir, **options)

    def runs(self) -> list[RunSpec]:
        """Every run of the sweep, in a fixed order (designs outer, seeds inner)."""
        hints = field_types(type(self.base))
        samples = self.random.samples() if self.random is not None else [{}]
        seed_values = self.grid.get(self.seed_field)
        design_grid = {name: values for name, values in self.grid.items() if name != self.seed_field}
        points = []
        for sample in samples:
            for combo in itertools.product(*design_grid.values()):
                design = dict(zip(design_grid, combo))
                design.update({name: coerce(value, hints[name], f"random.{name}") for name, value in sample.items()})
                for seed in seed_values if seed_values is not None else [None]:
                    overrides = dict(design)
                    if seed is not None:
                        overrides[self.seed_field] = seed
                    points.append(overrides)
        env_field = _env_field(self.base)
        runs, seen = [], set()
        for overrides in points:
            try:
                args = dataclasses.replace(self.base, **overrides)
            except (TypeError, ValueError) as error:
                raise ValueError(f"grid: the run {overrides} has invalid arguments: {error}") from None
            design_items = {k: v for k, v in overrides.items() if k != self.seed_field}
            # the environment reads best bare and first: "HalfCheetah-v5__teacher=mistake"
            ordered = sorted(design_items.items(), key=lambda item: item[0] != env_field)
            design = "__".join(_format_value(v) if k == env_field else f"{k}={_format_value(v)}" for k, v in ordered) or "base"
            seed = int(getattr(args, self.seed_field, 0) or 0)
            parts = []
            if env_field is not None and env_field not in design_items:
                parts.append(str(getattr(args, env_field)))
            parts += [design if design_items else "", f"seed{seed}"]
            name = _safe_name("__".join(p for p in parts if p))
            if name in seen:
                name = f"{name}__{_digest(overrides)}"
            seen.add(name)
            runs.append(RunSpec(name, args, design, seed, overrides))
        return runs


def _env_field(base: Any) -> str | None:
    for name in ("env_id", "env"):
        if any(f.name == name for f in dataclasses.fields(base)):
            return name
    return None


def _module_tail(fn: Any) -> str:
    return str(getattr(fn, "__module__", "sweep")).rsplit(".", 1)[-1]


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5) or len(repr(value)) > 8 else repr(value)
    if isinstance(value, (list, tuple)):
        return "-".join(_format_value(v) for v in value)
    return str(value)


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.=+\-]+", "-", name)
    if len(name) > 150:
        name = f"{name[:130]}__{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name


def _digest(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:8]


# Targets, fields and types ------------------------------------------------------------------------


def import_target(ref: str, what: str = "target") -> Any:
    """Import ``"package.module:attribute"``; ValueError naming ``what`` when that fails."""
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise ValueError(f"{what}: expected 'module:attribute', got {ref!r}")
    module_name, attribute = ref.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"{what}: cannot import module {module_name!r} ({error})") from None
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{what}: module {module_name!r} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    return obj


def args_class_of(fn: Callable[..., Any]) -> type:
    """The dataclass annotated on ``fn``'s first parameter."""
    try:
        params = list(inspect.signature(fn).parameters.values())
        hints = typing.get_type_hints(fn)
    except (TypeError, ValueError, NameError):
        params, hints = [], {}
    if params and dataclasses.is_dataclass(hints.get(params[0].name)):
        return hints[params[0].name]
    raise ValueError(f"args: cannot tell the arguments dataclass of {getattr(fn, '__qualname__', fn)!r} from its annotations; name it with args = 'module:Class'")


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved type annotation of a dataclass."""
    hints = typing.get_type_hints(cls)
    return {field.name: hints.get(field.name, Any) for field in dataclasses.fields(cls)}


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` converted to the annotated type ``tp`` (int -> float, str -> Path, list -> tuple).

    Raises:
        ValueError: the value does not fit; the message names ``where``, the type and the value.

    Example:
        >>> coerce(3, float, "grid.learning_rate")
        3.0
        >>> coerce("x", int, "grid.seed")
        Traceback (most recent call last):
        ...
        ValueError: grid.seed: expected int, got 'x'
    """
    error = ValueError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, where)
            except ValueError:
                continue
        raise error
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise ValueError(f"{where}: expected one of {typing.get_args(tp)}, got {value!r}")
    if origin in (tuple, list, Sequence, typing.Sequence):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise error
        inner = typing.get_args(tp)
        if origin is tuple and inner and not (len(inner) == 2 and inner[1] is Ellipsis):
            if len(inner) != len(value):
                raise error
            items = [coerce(v, t, where) for v, t in zip(value, inner)]
        else:
            item_type = inner[0] if inner else Any
            items = [coerce(v, item_type, where) for v in value]
        return list(items) if origin is list else tuple(items)
    if origin in (dict, Mapping) or tp in (dict,):
        if not isinstance(value, Mapping):
            raise error
        return dict(value)
    if tp is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise error
    if tp is int:
        if isinstance(value, (bool, np.bool_)):
            raise error
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        raise error
    if tp is float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise error
        return float(value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise error
    if tp is Path or (isinstance(tp, type) and issubclass(tp, Path)):
        if isinstance(value, (str, Path)):
            return Path(value)
        raise error
    if isinstance(tp, type) and not isinstance(value, tp):
        raise error
    return value


def args_to_builtin(args: Any) -> dict[str, Any]:
    """A dataclass of arguments as JSON-ready values (Paths as strings, tuples as lists)."""

    def convert(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, (np.integer, np.floating, np.bool_)):
            return value.item()
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return args_to_builtin(value)
        return value

    return {field.name: convert(getattr(args, field.name)) for field in dataclasses.fields(args)}
