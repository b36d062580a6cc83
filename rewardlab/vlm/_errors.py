"""The vision-language package's error (importable without torch: frame workers need it alone)."""

from __future__ import annotations


class VLMError(ValueError):
    """A vision-language model or frame source that cannot do what was asked (names which, and why)."""
