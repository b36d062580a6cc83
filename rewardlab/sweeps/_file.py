"""Sweep files: the same sweep as the Python API, written in TOML or YAML.

```toml
target = "experiments.bpref:main"      # module:function run for every point
args = "experiments.bpref:Args"        # optional: the arguments dataclass (default: fn's annotation)
name = "bpref"                         # optional: default the file's stem
seed_field = "seed"                    # optional

[options]                              # optional: how to run it (command-line options take precedence)
backend = "local"                      # local, ray or vmap
fresh_process = false                  # local: a new process per run instead of warm workers
compile_cache = "~/.cache/rewardlab/jax"   # JAX's persistent compilation cache; false for none

[base]                                 # fixed arguments
env_id = "Pendulum-v1"

[grid]                                 # the Cartesian product of these
teacher = ["oracle", "mistake"]
seed = [0, 1, 2]

[random]                               # optional random search, crossed with the grid
num_samples = 8
seed = 0
[random.space]
reward_learning_rate = { loguniform = [1e-4, 1e-2] }
```

Every error is one line that names the offending key (``grid.teacher``, ``base.seed``...).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rewardlab.sweeps._coerce import args_class_of, coerce, field_types, import_target
from rewardlab.sweeps._spaces import Distribution, choice, loguniform, randint, random_search, uniform
from rewardlab.sweeps._spec import Sweep

_TOP_LEVEL = ("target", "args", "name", "seed_field", "base", "grid", "random", "options")
_OPTION_TYPES: dict[str, Any] = {
    "backend": str,
    "workers": int,
    "threads_per_run": int,
    "run_timeout": float,
    "fresh_process": bool,
    "compile_cache": bool | str,
}
_DISTRIBUTIONS: dict[str, Callable[..., Distribution]] = {
    "uniform": uniform,
    "loguniform": loguniform,
    "randint": randint,
}


def _parse(path: Path) -> dict[str, Any]:
    text = path.read_text()
    suffix = path.suffix.lower()
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib

            try:
                return tomllib.loads(text)
            except tomllib.TOMLDecodeError as error:
                raise ValueError(f"{path.name}: invalid TOML ({error})") from None
        raise ValueError(f"{path.name}: reading TOML needs Python >= 3.11 (tomllib)")
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:  # pragma: no cover - PyYAML is a dependency
            raise ValueError(f"{path.name}: reading YAML needs PyYAML (pip install pyyaml)") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"{path.name}: invalid YAML ({' '.join(str(error).split())})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path.name}: expected a mapping at the top level, got {type(data).__name__}")
        return data
    raise ValueError(f"file: expected a .toml, .yaml or .yml sweep file, got {path.name!r}")


def load_sweep(path: str | os.PathLike) -> Sweep:
    """Read a TOML or YAML sweep file (format in this module's docstring) into a :class:`Sweep`.

    Raises:
        ValueError: one line naming the bad key: unknown keys, fields the arguments
            dataclass lacks, values of the wrong type, an unimportable target.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "s.toml"
        >>> _ = path.write_text('target = "experiments.bandit:main"\\n[grid]\\nseed = [0, 1]\\n')
        >>> len(load_sweep(path).runs())
        2
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"file: no sweep file at {str(path)!r}")
    data = _parse(path)
    unknown = [key for key in data if key not in _TOP_LEVEL]
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key; a sweep file has {', '.join(_TOP_LEVEL)}")
    if "target" not in data:
        raise ValueError("target: missing; name the function to run as target = 'module:function'")
    fn = import_target(data["target"], "target")
    if not callable(fn):
        raise ValueError(f"target: {data['target']!r} is not callable")
    args_cls = import_target(data["args"], "args") if "args" in data else args_class_of(fn)
    if not dataclasses.is_dataclass(args_cls):
        raise ValueError(f"args: {data.get('args')!r} is not a dataclass")
    hints = field_types(args_cls)

    base_values = data.get("base", {})
    if not isinstance(base_values, Mapping):
        raise ValueError(f"base: expected a table of field = value, got {base_values!r}")
    converted = {}
    for name, value in base_values.items():
        if name not in hints:
            raise ValueError(f"base.{name}: not a field of {args_cls.__name__}; fields: {', '.join(hints)}")
        converted[name] = coerce(value, hints[name], f"base.{name}")
    try:
        base = args_cls(**converted)
    except (TypeError, ValueError) as error:
        raise ValueError(f"base: {error}") from None

    grid = data.get("grid", {})
    if not isinstance(grid, Mapping):
        raise ValueError(f"grid: expected a table of field = [values], got {grid!r}")
    for name, values in grid.items():
        if not isinstance(values, list):
            raise ValueError(f"grid.{name}: expected a list of values, got {values!r}")

    search = None
    if "random" in data:
        search = _random(data["random"])
    seed_field = data.get("seed_field", "seed")
    if not isinstance(seed_field, str):
        raise ValueError(f"seed_field: expected a field name, got {seed_field!r}")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    options = data.get("options", {})
    if not isinstance(options, Mapping):
        raise ValueError(f"options: expected a table of option = value, got {options!r}")
    for key, value in options.items():
        if key not in _OPTION_TYPES:
            raise ValueError(f"options.{key}: unknown option; expected one of {', '.join(_OPTION_TYPES)}")
        kinds = _OPTION_TYPES[key]
        wrong_bool = isinstance(value, bool) and kinds in (int, float)
        if wrong_bool or not isinstance(value, (int, float) if kinds is float else kinds):
            raise ValueError(f"options.{key}: expected {getattr(kinds, '__name__', kinds)}, got {value!r}")
    return Sweep(fn=fn, base=base, grid=grid, random=search, name=name, seed_field=seed_field, options=options)


def _random(table: Any) -> Any:
    if not isinstance(table, Mapping):
        raise ValueError(f"random: expected a table with num_samples, seed and space, got {table!r}")
    unknown = [key for key in table if key not in ("num_samples", "seed", "space")]
    if unknown:
        raise ValueError(f"random.{unknown[0]}: unknown key; expected num_samples, seed, space")
    num_samples = coerce(table.get("num_samples"), int, "random.num_samples")
    seed = coerce(table.get("seed", 0), int, "random.seed")
    space_table = table.get("space", {})
    if not isinstance(space_table, Mapping) or not space_table:
        raise ValueError(
            "random.space: expected a table of field = { uniform | loguniform | randint = [low, high] } or { choice = [...] }"
        )
    space: dict[str, Distribution] = {}
    for name, spec in space_table.items():
        where = f"random.space.{name}"
        if not isinstance(spec, Mapping) or len(spec) != 1:
            raise ValueError(
                f"{where}: expected one of {{uniform, loguniform, randint = [low, high]}} or {{choice = [values]}}, got {spec!r}"
            )
        ((kind, params),) = spec.items()
        if kind == "choice":
            if not isinstance(params, list) or not params:
                raise ValueError(f"{where}.choice: expected a non-empty list, got {params!r}")
            space[name] = choice(params)
        elif kind in _DISTRIBUTIONS:
            if not isinstance(params, list) or len(params) != 2:
                raise ValueError(f"{where}.{kind}: expected [low, high], got {params!r}")
            try:
                space[name] = _DISTRIBUTIONS[kind](*params)
            except (TypeError, ValueError) as error:
                raise ValueError(f"{where}.{kind}: {error}") from None
        else:
            raise ValueError(f"{where}: unknown distribution {kind!r}; expected uniform, loguniform, randint or choice")
    try:
        return random_search(space, num_samples, seed)
    except ValueError as error:
        raise ValueError(f"random.{error}") from None
