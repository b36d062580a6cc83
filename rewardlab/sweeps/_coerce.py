"""Coercion: TOML, YAML, command-line and grid values turned into the annotated field types of an arguments dataclass.

A value read from a sweep file or a command line is a plain int, float, str, list or dict;
an experiment's arguments are a frozen dataclass whose fields carry types (``float``,
``Path``, ``tuple[int, ...]``, ``Literal["oracle", "mistake"]``, ``int | None``).
:func:`coerce` converts one value to its field's type or fails with a one-line message
that names where the value came from; :func:`check_choices` is the same check of the
``Literal`` fields of a dataclass that already exists, which an experiment's
``Args.__post_init__`` calls so that its choices are validated in one place.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np


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
    raise ValueError(
        f"args: cannot tell the arguments dataclass of {getattr(fn, '__qualname__', fn)!r} from its annotations; name it with args = 'module:Class'"
    )


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

    A ``Literal[...]`` type accepts exactly its choices; unions try their members in order;
    tuples and lists convert item by item.

    Raises:
        ValueError: the value does not fit; the message names ``where``, the type and the value.

    Example:
        >>> coerce(3, float, "grid.learning_rate")
        3.0
        >>> coerce("x", int, "grid.seed")
        Traceback (most recent call last):
        ...
        ValueError: grid.seed: expected int, got 'x'
        >>> coerce("sometimes", typing.Literal["oracle", "mistake"], "grid.teacher")
        Traceback (most recent call last):
        ...
        ValueError: grid.teacher: expected one of ('oracle', 'mistake'), got 'sometimes'
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
            items = [coerce(v, t, where) for v, t in zip(value, inner, strict=True)]
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


def _mentions_literal(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Literal or any(_mentions_literal(arg) for arg in typing.get_args(tp))


@functools.cache
def _choice_fields(cls: type) -> tuple[tuple[str, Any], ...]:
    """(name, type) of the fields of ``cls`` whose annotation holds a ``Literal`` (read once per class)."""
    return tuple((name, tp) for name, tp in field_types(cls).items() if _mentions_literal(tp))


def check_choices(args: Any) -> None:
    """Check every ``Literal``-annotated field of a dataclass instance against its choices.

    Fields annotated ``Literal[...]`` (also inside ``X | None`` or ``tuple[Literal[...], ...]``)
    must hold one of the listed values; an experiment's ``Args.__post_init__`` calls this so
    that the command line, sweep files and Python callers get the same one-line error.

    Args:
        args: a dataclass instance (typically ``self`` in ``__post_init__``).

    Raises:
        ValueError: a field holds a value outside its choices; the message names the field,
            the allowed values and the value. Also when ``args`` is not a dataclass instance.

    Example:
        >>> import dataclasses, typing
        >>> @dataclasses.dataclass(frozen=True)
        ... class Args:
        ...     teacher: typing.Literal["oracle", "mistake"] = "oracle"
        ...     def __post_init__(self) -> None:
        ...         check_choices(self)
        >>> Args(teacher="mistake").teacher
        'mistake'
        >>> Args(teacher="sometimes")
        Traceback (most recent call last):
        ...
        ValueError: teacher: expected one of ('oracle', 'mistake'), got 'sometimes'
    """
    if not dataclasses.is_dataclass(args) or isinstance(args, type):
        raise ValueError(f"args: expected a dataclass instance, got {type(args).__name__}")
    for name, tp in _choice_fields(type(args)):
        coerce(getattr(args, name), tp, name)


def to_builtin(value: Any) -> Any:
    """An argument value as a JSON-ready value (Paths as strings, tuples as lists, NumPy scalars as Python ones)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return args_to_builtin(value)
    return value


def args_to_builtin(args: Any) -> dict[str, Any]:
    """A dataclass of arguments as JSON-ready values (field name -> :func:`to_builtin` of its value)."""
    return {field.name: to_builtin(getattr(args, field.name)) for field in dataclasses.fields(args)}
