"""Griffe extension for the API reference: read rewardlab's docstrings as they are written.

* ``Example:`` is a Google-style section heading (as ``Examples:``), so its doctests render as
  code; griffe knows only the plural and would render the doctest output as Markdown.
* Sphinx roles (:func:`x`, :class:`x`, ...) become cross-references ``[`x`][x]``, resolved from
  the docstring's scope (``scoped_crossrefs``), so a role naming nothing fails the strict build.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE_HEADING = re.compile(r"^([ \t]*)Example:[ \t]*$", re.MULTILINE)
_SPHINX_ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|obj|exc):`~?([^`]+)`")


class DocstringSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = _EXAMPLE_HEADING.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = _SPHINX_ROLE.sub(r"[`\1`][\1]", text)
