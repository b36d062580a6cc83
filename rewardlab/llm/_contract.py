"""The reward-code contract: what the model writes, how it is taken out of a reply and checked before it runs.

The model writes one vectorised NumPy function over a batch of N transitions::

    def compute_reward(obs, act, next_obs, terminated):
        ...
        return reward, {"name": component, ...}

with ``obs``, ``next_obs`` ``[N, obs_dim]``, ``act`` ``[N, act_dim]`` (``[N]`` for a discrete
action), ``terminated`` ``[N]`` bool, ``reward`` ``[N]`` float and each named component ``[N]``
(Eureka's reward components, Ma et al. 2023, "Eureka: Human-Level Reward Design via Coding Large
Language Models"). The static checks here are the first of the sandbox's layers: they reject
code that imports anything but ``numpy``/``math``, touches an attribute that starts with ``_``
(``__class__``, ``__subclasses__``, ``__globals__``, ``_private``), reads frames or tracebacks,
calls ``open``/``exec``/``eval``/``compile``/``getattr``/``setattr``/``globals``/``locals``/
``vars``/``__import__``/``input``/``breakpoint`` or reaches NumPy's file, ctypes and test
modules, and code whose function has another name or signature. Code that passes still runs only
in the sandbox (:class:`rewardlab.llm.Sandbox`): the checks are a filter, not the wall.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from rewardlab.llm._errors import CodeError, RewardCodeError

REWARD_FUNCTION_NAME = "compute_reward"
"""The name of the function the model writes."""
REWARD_ARGUMENTS = ("obs", "act", "next_obs", "terminated")
"""Its positional arguments, in order."""
ALLOWED_IMPORTS = frozenset({"numpy", "math"})
"""Top-level modules the code may import."""
FORBIDDEN_NAMES = frozenset(
    {
        "open",
        "exec",
        "eval",
        "compile",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "globals",
        "locals",
        "vars",
        "dir",
        "__import__",
        "__builtins__",
        "__loader__",
        "__spec__",
        "input",
        "breakpoint",
        "help",
        "memoryview",
        "type",
        "object",
        "super",
        "classmethod",
        "staticmethod",
        "property",
        "exit",
        "quit",
        "copyright",
        "credits",
        "license",
    }
)
"""Names the code may not use (builtins that read or write outside the function, or reach objects' internals)."""
FORBIDDEN_ATTRIBUTES = frozenset(
    {
        # NumPy's doors to files, foreign code and subprocesses.
        "ctypes",
        "ctypeslib",
        "lib",
        "testing",
        "f2py",
        "distutils",
        "load",
        "loads",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "tofile",
        "fromregex",
        "memmap",
        "open_memmap",
        "dump",
        "dumps",
        "DataSource",
        "show_config",
        "show_runtime",
        "get_include",
        # Frames, code objects and tracebacks lead back to the interpreter's globals.
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "tb_frame",
        "tb_next",
        "co_code",
        "mro",
        "format",
        "format_map",
    }
)
"""Attributes the code may not read (besides every name that starts with ``_``)."""

REPLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"code": {"type": "string"}},
    "required": ["code"],
    "additionalProperties": False,
}
"""JSON schema of a constrained reply: ``{"code": "<the Python source>"}`` (see ``reply_schema``)."""


def reply_schema(*, fix_signature: bool = True, single_expression: bool = False) -> dict[str, Any]:
    """The JSON schema for grammar-constrained decoding of a reply that carries reward code.

    The code's length is bounded by the pattern, so a constrained reply closes its JSON string
    before a token limit can cut it (llama.cpp refuses to return JSON it cannot parse).

    Args:
        fix_signature: constrain the code to begin with ``import numpy as np`` and the function's
            ``def`` line, then at most 4 body lines of at most 80 characters and a ``return``
            line (a regular-expression ``pattern``), so a small model cannot miss the name or the
            arguments. llama.cpp's server honours the pattern; other endpoints may ignore it.
        single_expression: stricter: the body is exactly ``reward = <one expression of at most
            160 characters>`` and ``return reward, {'reward': reward}``; the prompt should ask
            for one NumPy expression.

    Returns:
        ``{"type": "object", "properties": {"code": {"type": "string", ...}}, "required": ["code"]}``.

    Example:
        >>> reply_schema()["properties"]["code"]["pattern"].startswith("^import numpy as np\\\\n")
        True
        >>> "pattern" in reply_schema(fix_signature=False)["properties"]["code"]
        False
    """
    schema = json.loads(json.dumps(REPLY_SCHEMA))
    header = rf"import numpy as np\n\ndef {REWARD_FUNCTION_NAME}\({', '.join(REWARD_ARGUMENTS)}\):\n"
    if single_expression:
        body = r"    reward = .{1,160}\n    return reward, \{'reward': reward\}"
        schema["properties"]["code"]["pattern"] = "^" + header + body + "$"
    elif fix_signature:
        schema["properties"]["code"]["pattern"] = "^" + header + r"(    .{0,80}\n){0,4}    return .{1,100}$"
    return schema


def contract_text() -> str:
    """The contract as the prompt states it: signature, shapes, allowed imports and the return value.

    Example:
        >>> "def compute_reward(obs, act, next_obs, terminated):" in contract_text()
        True
    """
    arguments = ", ".join(REWARD_ARGUMENTS)
    return (
        f"Write one Python function `def {REWARD_FUNCTION_NAME}({arguments}):` vectorised with NumPy over a batch "
        "of N transitions: `obs` and `next_obs` are float arrays [N, obs_dim], `act` is [N, act_dim] "
        "([N] integers for a discrete action), `terminated` is a bool array [N]. Return a tuple "
        "`(reward, components)`: `reward` a float array [N] and `components` a dict from a short name to a "
        "float array [N] for each term of the reward. Use only `import numpy as np` and `import math`; "
        "no loops over the batch, no files, no printing, no other imports."
    )


def reward_messages(task: str, env_description: str, *, feedback: str | None = None) -> list[dict[str, str]]:
    """The chat messages that ask for a reward function: the contract, the environment and the task.

    Args:
        task: what the agent should do, in words.
        env_description: the observation and action layouts (what each index means, units, ranges).
        feedback: optional text appended to the request (errors of an earlier attempt, a critique).

    Returns:
        ``[{"role": "system", ...}, {"role": "user", ...}]``.

    Example:
        >>> messages = reward_messages("Swing up and balance.", "obs[:, 0] = cos(theta)")
        >>> [message["role"] for message in messages]
        ['system', 'user']
    """
    for name, value in (("task", task), ("env_description", env_description)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name}: expected a non-empty description, got {value!r}")
    system = "You are a reward engineer. You write reward functions for reinforcement learning in Python. " + (
        contract_text()
    )
    user = f"Environment:\n{env_description.strip()}\n\nTask: {task.strip()}\n\nWrite compute_reward."
    if feedback:
        user += f"\n\n{feedback.strip()}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(reply: str) -> str:
    """The reward code in a model's reply.

    In order: a JSON object with a string field ``"code"`` (a constrained reply); the last fenced
    code block (```` ```python ```` or bare ```` ``` ````, an unclosed last fence included) that
    defines ``compute_reward``, else the last Python block; else the reply from the line that
    starts ``import`` or ``def compute_reward`` onwards.

    Args:
        reply: the model's reply text.

    Returns:
        The code, stripped of surrounding blank lines.

    Raises:
        RewardCodeError: the reply is empty or holds no code (one ``CodeError`` of type ``"NoCode"``).

    Example:
        >>> extract_code("Here:\\n```python\\ndef compute_reward(obs, act, next_obs, terminated):\\n    pass\\n```")
        'def compute_reward(obs, act, next_obs, terminated):\\n    pass'
        >>> extract_code('{"code": "import math"}')
        'import math'
    """
    if not isinstance(reply, str) or not reply.strip():
        raise RewardCodeError([CodeError("NoCode", "the reply is empty")])
    text = reply.strip()
    if text.startswith("{"):
        code = _json_code_field(text)
        if code is not None and code.strip():
            return code.strip("\n").rstrip()
    blocks = [(language.lower(), body) for language, body in _FENCE.findall(text)]
    defining = [body for _, body in blocks if f"def {REWARD_FUNCTION_NAME}" in body]
    python = [body for language, body in blocks if language in ("python", "py", "python3", "")]
    for candidates in (defining, python):
        if candidates and candidates[-1].strip():
            return candidates[-1].strip("\n").rstrip()
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(("import ", "from ", f"def {REWARD_FUNCTION_NAME}")):
            return "\n".join(lines[index:]).strip("\n").rstrip()
    raise RewardCodeError([CodeError("NoCode", "no code block and no `def compute_reward` in the reply")])


_CODE_FIELD = re.compile(r'^\{\s*"code"\s*:\s*"')


def _json_code_field(text: str) -> str | None:
    """The ``"code"`` string of a JSON reply; lenient with raw newlines and with a reply cut off mid-string."""
    try:
        parsed = json.loads(text, strict=False)  # strict=False: raw control characters inside strings
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        return parsed["code"] if isinstance(parsed.get("code"), str) else None
    match = _CODE_FIELD.match(text)
    if match is None:
        return None
    # Cut off (max_tokens): decode the string up to its closing quote or the end of the reply.
    rest = text[match.end() :]
    end = 0
    while end < len(rest) and rest[end] != '"':
        end += 2 if rest[end] == "\\" else 1
    try:
        return str(json.loads('"' + rest[:end].rstrip("\\") + '"', strict=False))
    except json.JSONDecodeError:
        return None


def check_reward_code(code: str) -> tuple[CodeError, ...]:
    """Static checks of reward code before anything runs (the first layer of the sandbox).

    Parses the code and walks its syntax tree: imports other than ``numpy``/``math`` (and
    relative imports), any attribute that starts with ``_``, the attributes in
    ``FORBIDDEN_ATTRIBUTES``, the names in ``FORBIDDEN_NAMES`` and any name that starts with
    ``__``; ``global``/``nonlocal`` statements, class definitions and ``async`` code; then
    that exactly one top-level function ``compute_reward(obs, act, next_obs, terminated)``
    exists (no defaults, ``*args`` or keyword-only arguments).

    Args:
        code: the Python source.

    Returns:
        Every problem found, in source order (empty: the code may go to the sandbox).

    Example:
        >>> check_reward_code("import os\\ndef compute_reward(obs, act, next_obs, terminated):\\n    return 0, {}")
        (CodeError(type='ForbiddenImport', message='import of os: only numpy and math may be imported', line=1),)
    """
    if not isinstance(code, str) or not code.strip():
        return (CodeError("NoCode", "the code is empty"),)
    try:
        tree = ast.parse(code, filename="<reward>")
    except SyntaxError as error:
        return (CodeError("SyntaxError", str(error.msg), error.lineno),)
    except (ValueError, MemoryError, RecursionError) as error:  # null bytes, absurd nesting
        return (CodeError("SyntaxError", f"{type(error).__name__}: {error}", None),)
    errors: list[CodeError] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in ALLOWED_IMPORTS:
                    errors.append(
                        CodeError(
                            "ForbiddenImport", f"import of {alias.name}: only numpy and math may be imported", line
                        )
                    )
                elif _forbidden_submodule(alias.name):
                    errors.append(CodeError("ForbiddenImport", f"import of {alias.name} is not allowed", line))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level or module.split(".")[0] not in ALLOWED_IMPORTS or _forbidden_submodule(module):
                errors.append(
                    CodeError(
                        "ForbiddenImport",
                        f"import from {'.' * node.level}{module}: only numpy and math may be imported",
                        line,
                    )
                )
            for alias in node.names:
                if alias.name.startswith("_") or alias.name in FORBIDDEN_ATTRIBUTES or alias.name == "*":
                    errors.append(CodeError("ForbiddenImport", f"import of {module}.{alias.name}", line))
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                errors.append(
                    CodeError(
                        "ForbiddenAttribute", f"attribute {node.attr}: names starting with _ are not allowed", line
                    )
                )
            elif node.attr in FORBIDDEN_ATTRIBUTES:
                errors.append(CodeError("ForbiddenAttribute", f"attribute {node.attr} is not allowed", line))
        elif isinstance(node, ast.Name):
            if node.id in FORBIDDEN_NAMES or node.id.startswith("__"):
                errors.append(CodeError("ForbiddenName", f"name {node.id} is not allowed", line))
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            errors.append(CodeError("ForbiddenName", "global and nonlocal statements are not allowed", line))
        elif isinstance(node, ast.ClassDef):
            errors.append(CodeError("ForbiddenName", f"class {node.name}: classes are not allowed", line))
        elif isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)):
            errors.append(CodeError("ForbiddenName", "async code is not allowed", line))
        elif isinstance(node, ast.keyword) and node.arg is not None and node.arg.startswith("_"):
            errors.append(
                CodeError("ForbiddenName", f"keyword {node.arg}: names starting with _ are not allowed", line)
            )
        elif isinstance(node, ast.alias) and node.asname is not None and node.asname.startswith("__"):
            errors.append(CodeError("ForbiddenName", f"alias {node.asname} is not allowed", line))
    errors.extend(_signature_errors(tree))
    return tuple(sorted(errors, key=lambda error: error.line or 0))


def _forbidden_submodule(dotted: str) -> bool:
    return any(part.startswith("_") or part in FORBIDDEN_ATTRIBUTES for part in dotted.split(".")[1:])


def _signature_errors(tree: ast.Module) -> list[CodeError]:
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == REWARD_FUNCTION_NAME]
    expected = f"def {REWARD_FUNCTION_NAME}({', '.join(REWARD_ARGUMENTS)})"
    if not functions:
        return [CodeError("Signature", f"no top-level function {REWARD_FUNCTION_NAME}: expected `{expected}:`", None)]
    if len(functions) > 1:
        return [
            CodeError("Signature", f"{REWARD_FUNCTION_NAME} is defined {len(functions)} times", functions[1].lineno)
        ]
    arguments = functions[0].args
    names = tuple(argument.arg for argument in (*arguments.posonlyargs, *arguments.args))
    if (
        names != REWARD_ARGUMENTS
        or arguments.vararg
        or arguments.kwarg
        or arguments.kwonlyargs
        or arguments.defaults
        or functions[0].decorator_list
    ):
        return [
            CodeError(
                "Signature",
                f"expected `{expected}:` without defaults or decorators, got arguments {', '.join(names) or '(none)'}",
                functions[0].lineno,
            )
        ]
    return []


def checked_code(reply_or_code: str, *, is_reply: bool = True) -> str:
    """The code of a reply (or the code itself) after the static checks.

    Raises:
        RewardCodeError: no code in the reply, or the checks found problems (all of them).

    Example:
        >>> checked_code("def compute_reward(obs, act, next_obs, terminated):\\n    return obs[:, 0], {}", is_reply=False)
        'def compute_reward(obs, act, next_obs, terminated):\\n    return obs[:, 0], {}'
    """
    code = extract_code(reply_or_code) if is_reply else reply_or_code
    errors = check_reward_code(code)
    if errors:
        raise RewardCodeError(errors)
    return code
