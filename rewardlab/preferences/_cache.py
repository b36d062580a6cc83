"""A small cache of jitted functions keyed by object identity.

Reward models and optax transformations need not be hashable (gymnasium spaces are not), so
jitted closures are cached by ``id`` of their static arguments; each entry keeps those objects
alive, so an id cannot be reused while its entry exists.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

_MAX_ENTRIES = 32
_ENTRIES: OrderedDict[tuple, tuple[tuple, Any]] = OrderedDict()


def cached(kind: str, objects: tuple, settings: tuple, build: Callable[[], Any]) -> Any:
    """``build()`` once per (kind, identities of ``objects``, ``settings``); least recently used evicted."""
    key = (kind, tuple(id(obj) for obj in objects), settings)
    if key in _ENTRIES:
        _ENTRIES.move_to_end(key)
        return _ENTRIES[key][1]
    value = build()
    _ENTRIES[key] = (objects, value)
    while len(_ENTRIES) > _MAX_ENTRIES:
        _ENTRIES.popitem(last=False)
    return value
