"""Command-line parsing of an experiment's frozen dataclass of arguments (argparse)."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
from collections.abc import Sequence
from typing import Any

from rewardlab.sweeps._coerce import coerce, field_types


def _attribute_docs(cls: type) -> dict[str, str]:
    """``name: text`` entries of the class docstring's ``Attributes:`` section."""
    doc = inspect.getdoc(cls) or ""
    match = re.search(r"^Attributes:\n((?:[ \t]+.*\n?|\n)*)", doc, re.MULTILINE)
    if not match:
        return {}
    docs: dict[str, str] = {}
    current = None
    for line in match.group(1).splitlines():
        entry = re.match(r"^\s{4}(\w+)(?: \(.*?\))?:\s*(.*)$", line)
        if entry:
            current = entry.group(1)
            docs[current] = entry.group(2)
        elif current and line.strip():
            docs[current] += " " + line.strip()
    return docs


def _parse_value(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_args(cls: type, argv: Sequence[str] | None = None) -> Any:
    """Build ``cls`` (a dataclass of arguments) from ``--field value`` command-line options.

    Each field becomes ``--field-name`` with the help text from the class docstring's
    ``Attributes`` section; values are converted to the field's annotated type
    (``--hidden-sizes "[64, 64]"`` for tuples, ``--flag true`` for booleans).

    Example:
        >>> import dataclasses
        >>> @dataclasses.dataclass(frozen=True)
        ... class Args:
        ...     '''Attributes:
        ...         num_steps: gradient steps.
        ...     '''
        ...     num_steps: int = 10
        >>> parse_args(Args, ["--num-steps", "3"])
        Args(num_steps=3)
    """
    if not dataclasses.is_dataclass(cls):
        raise ValueError(f"cls: expected a dataclass of arguments, got {cls!r}")
    docs = _attribute_docs(cls)
    hints = field_types(cls)
    parser = argparse.ArgumentParser(description=(inspect.getdoc(cls) or "").split("\n\n")[0])
    for field in dataclasses.fields(cls):
        default = field.default if field.default is not dataclasses.MISSING else None
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            dest=field.name,
            default=dataclasses.MISSING,
            metavar=field.name.upper(),
            help=f"{docs.get(field.name, '')} (default: {default!r})",
        )
    namespace = parser.parse_args(argv)
    values = {}
    for name, text in vars(namespace).items():
        if text is dataclasses.MISSING:
            continue
        tp = hints[name]
        value = text if tp is str else _parse_value(text)
        option = f"--{name.replace('_', '-')}"
        try:
            values[name] = coerce(value, tp, option)
        except ValueError:
            try:
                values[name] = coerce(text, tp, option)
            except ValueError as error:
                parser.error(str(error))
    try:
        return cls(**values)
    except ValueError as error:
        parser.error(str(error))
