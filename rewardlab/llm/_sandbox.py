"""``Sandbox``: generated reward code runs in a worker process of its own, never in the library's.

One worker per candidate, started on first use and kept alive for batched calls. Its locks
(``rewardlab/llm/_sandbox_worker.py``): a process of its own that dies with its parent; resource
limits (CPU time per call and over its life, address space, file size, open files, no new
processes); a seccomp filter on x86-64 Linux under which opening or changing any path, creating
a process or a socket and signalling another process fail; a fresh network namespace when the
library runs as root; a scratch directory as its working directory and the only place its
printed output goes; reduced builtins and a NumPy without file, ctypes and test modules. The
parent adds a wall-clock limit per call (the worker is killed and a fresh one started for the
next call), never unpickles what the worker sends, and checks the reward again: finite, float,
shape [N].

A call's arrays travel through a shared-memory file where Linux has one (a memfd sealed against
shrinking and growing, so the worker cannot cut the parent's mapping short): the parent copies
the batch in and sends a small request, the same bytes for every batch of one layout; the
worker copies it out for the code and writes the rows back, and the parent copies them out
before checking them. Batches too large for it, and other inputs (dicts of arrays), go pickled
through the pipe.

While calls follow each other closely (a vector env's steps), each side polls its pipe for the
other's message for up to ``SandboxLimits.poll_us`` before sleeping on it, so a call costs no
process wake-ups (``PipePoll``; it stops polling by itself when calls come less often or when
another process wants the CPU).
"""

from __future__ import annotations

import json
import mmap
import os
import pickle
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rewardlab.llm._contract import check_reward_code
from rewardlab.llm._errors import CodeError, RewardCodeError
from rewardlab.llm._sandbox_worker import PipePoll

_WORKER = Path(__file__).with_name("_sandbox_worker.py")
_LENGTH = struct.Struct("<Q")
_MAX_HEADER_BYTES = 1 << 16
_PIPE_BUF = 4096  # a write this small into an empty pipe never blocks (POSIX PIPE_BUF; a pipe holds at least a page)
_SHARED_BYTES = 32 << 20  # address space of the shared-memory file; pages exist only once written
_ALIGN = 64


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of a sandbox worker, and how long each side polls for the other's message.

    Attributes:
        wall_s_per_call: seconds a call (or loading the code) may take before the worker is killed.
        cpu_s_per_call: CPU seconds a call may use (RLIMIT_CPU soft limit; SIGXCPU kills the worker).
        lifetime_cpu_s: CPU seconds over the worker's life (RLIMIT_CPU hard limit); the sandbox
            starts a fresh worker before an old one reaches it.
        memory_mb: address space the code may add to the interpreter's (RLIMIT_AS).
        file_size_mb: largest file the worker may write (RLIMIT_FSIZE): its printed output.
        open_files: open file descriptors (RLIMIT_NOFILE).
        startup_s: seconds the worker may take to start (NumPy's import on a busy machine).
        max_components: most named reward components a call may return.
        poll_us: microseconds the worker polls for the next request after a reply, and the
            parent for the reply after a batch request, before sleeping on the pipe (see
            ``PipePoll``): saves the two process wake-ups of a call while calls come at least
            this often (a vector env's steps), for up to this much CPU time per call; polling
            stops by itself when calls come less often or another process wants the CPU. 0
            never polls.
    """

    wall_s_per_call: float = 10.0
    cpu_s_per_call: float = 10.0
    lifetime_cpu_s: float = 3600.0
    memory_mb: float = 1024.0
    file_size_mb: float = 4.0
    open_files: int = 32
    startup_s: float = 60.0
    max_components: int = 32
    poll_us: float = 1000.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name == "poll_us":
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1e6:
                    raise ValueError(f"{name}: expected a number of microseconds in [0, 1e6], got {value!r}")
            elif not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name}: expected a positive number, got {value!r}")


class RewardOutput(NamedTuple):
    """What one sandboxed call returns."""

    reward: np.ndarray  # [N] float32
    components: dict[str, np.ndarray]  # name -> [N] float32


class _Layout(NamedTuple):
    """Where one shape of batch goes in the shared memory, and the request that names it."""

    inputs: tuple[np.ndarray, ...]  # views of the shared memory: obs, act, next_obs, terminated
    out_start: int  # index (in float64) of the output block: [worker CPU s, rows...]
    message: bytes  # the framed request


def shared_memory(size: int) -> tuple[int, mmap.mmap] | None:
    """A memfd of ``size`` bytes, sealed against shrinking, growing and further seals, mapped here.

    The seals keep a worker that holds the descriptor from truncating the file under the
    parent's mapping (a SIGBUS in the parent) or growing it. None where the platform has no
    sealed memfd.
    """
    try:
        import fcntl
    except ImportError:
        return None
    create = getattr(os, "memfd_create", None)
    add_seals = getattr(fcntl, "F_ADD_SEALS", None)
    if create is None or add_seals is None:
        return None
    try:
        fd = create("rewardlab-sandbox", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except OSError:
        return None
    try:
        os.ftruncate(fd, size)
        fcntl.fcntl(fd, add_seals, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
        return fd, mmap.mmap(fd, size)
    except OSError:
        os.close(fd)
        return None


class _WorkerGoneError(Exception):
    """The worker died, timed out or broke the protocol."""

    def __init__(self, error: CodeError) -> None:
        super().__init__(str(error))
        self.error = error


class Sandbox:
    """Runs one generated ``compute_reward`` in a locked-down worker process.

    Args:
        code: the reward code (``def compute_reward(obs, act, next_obs, terminated)``).
        limits: resource limits (``SandboxLimits()``).
        scratch_dir: the worker's working directory (default: a fresh temporary folder,
            removed by ``close``); its printed output goes to ``output.log`` there.
        check: run the static checks (``check_reward_code``) before the code goes to a worker.
        python_guards: reduced builtins and the trimmed NumPy. ``False`` leaves only the
            process's own locks; the tests use it to show those hold alone.
        seccomp: install the system-call filter (x86-64 Linux).
        shared_memory: pass batches through a sealed shared-memory file (Linux) rather than
            pickled through the pipe; ``False`` keeps every call on the pipe.

    Attributes:
        isolation: the locks the current worker reports (``seccomp``, ``network_namespace``,
            ``dropped_root``, ``rlimit_nproc``, ``python_guards``, ``address_space_bytes``,
            ``shared_memory``).
        workers_started: workers started so far (a timeout or a crash replaces the worker).
        worker_pid: the current worker's process id.

    Raises:
        RewardCodeError: the static checks reject the code (with ``check=True``).

    Example:
        >>> import numpy as np
        >>> code = "import numpy as np\\ndef compute_reward(obs, act, next_obs, terminated):\\n"
        >>> code += "    upright = -np.abs(next_obs[:, 0])\\n    return upright, {'upright': upright}"
        >>> with Sandbox(code) as sandbox:
        ...     out = sandbox(np.array([[0.5], [-2.0]]), np.zeros((2, 1)), np.array([[0.5], [-2.0]]), np.zeros(2, bool))
        >>> out.reward.tolist(), sorted(out.components)
        ([-0.5, -2.0], ['upright'])
    """

    def __init__(
        self,
        code: str,
        *,
        limits: SandboxLimits | None = None,
        scratch_dir: str | os.PathLike | None = None,
        check: bool = True,
        python_guards: bool = True,
        seccomp: bool = True,
        shared_memory: bool = True,
    ) -> None:
        if not isinstance(code, str):
            raise TypeError(f"code: expected the reward code as a str, got {type(code).__name__}")
        if check:
            errors = check_reward_code(code)
            if errors:
                raise RewardCodeError(errors)
        self.code = code
        self.limits = limits if limits is not None else SandboxLimits()
        if not isinstance(self.limits, SandboxLimits):
            raise TypeError(f"limits: expected a SandboxLimits, got {type(self.limits).__name__}")
        self._own_scratch = scratch_dir is None
        self.scratch_dir = Path(tempfile.mkdtemp(prefix="rewardlab-sandbox-") if scratch_dir is None else scratch_dir)
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        self.python_guards = bool(python_guards)
        self.seccomp = bool(seccomp)
        self.shared_memory = bool(shared_memory)
        self.isolation: dict[str, Any] = {}
        self.workers_started = 0
        self.worker_pid: int | None = None
        self._process: subprocess.Popen | None = None
        self._to_worker = -1
        self._from_worker = -1
        self._poll = PipePoll(-1, 0.0)
        self._buffer = bytearray()
        self._cpu_s = 0.0
        self._closed = False
        self._shared: np.ndarray | None = None  # the shared memory as float64, while a worker maps it too
        self._layouts: dict[tuple, _Layout | None] = {}
        self._replies: dict[tuple[int, bytes], list[str]] = {}  # (N, a shared call's reply header) -> its names

    # Worker life -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """A worker is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> Sandbox:
        """Start a worker and load the code into it (calls start one when none runs).

        Raises:
            RewardCodeError: the worker could not start, or loading the code raised
                (its ``CodeError`` has the exception's type, message and line).
        """
        if self._closed:
            raise RuntimeError("the sandbox is closed")
        if self.running:
            return self
        self._stop_worker()
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        shared = shared_memory(_SHARED_BYTES) if self.shared_memory else None
        shared_fd = -1 if shared is None else shared[0]
        config = {
            "in_fd": request_read,
            "out_fd": reply_write,
            "shm_fd": shared_fd,
            "shm_bytes": _SHARED_BYTES,
            "parent_pid": os.getpid(),
            "scratch_dir": str(self.scratch_dir.resolve()),
            "python_guards": self.python_guards,
            "seccomp": self.seccomp,
            **asdict(self.limits),
        }
        # A clean environment: no credentials (API keys) reach the generated code; one BLAS thread.
        env = {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        with open(self.scratch_dir / "output.log", "ab") as output:
            try:
                self._process = subprocess.Popen(
                    [sys.executable, "-I", str(_WORKER), json.dumps(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    pass_fds=(request_read, reply_write) if shared is None else (request_read, reply_write, shared_fd),
                    cwd=self.scratch_dir,
                    env=env,
                    start_new_session=True,
                )
            finally:
                os.close(request_read)
                os.close(reply_write)
                if shared is not None:
                    os.close(shared_fd)
        self._to_worker, self._from_worker = request_write, reply_read
        self._poll = PipePoll(reply_read, self.limits.poll_us * 1e-6)
        self._buffer = bytearray()
        self.workers_started += 1
        self._cpu_s = 0.0
        try:
            header, _ = self._receive(self.limits.startup_s, "starting the worker")
            self.isolation = dict(header.get("isolation", {}))
            self.worker_pid = int(header.get("pid", self._process.pid))
            if shared is not None and self.isolation.get("shared_memory") is True:
                self._shared = np.frombuffer(shared[1], np.float64)
            header, _ = self._request({"op": "load", "code": self.code}, "loading the code")
        except _WorkerGoneError as gone:
            self._stop_worker()
            raise RewardCodeError([gone.error]) from None
        if not header.get("ok"):
            self._stop_worker()
            raise RewardCodeError(_errors_from(header))
        return self

    def _stop_worker(self) -> None:
        process, self._process = self._process, None
        for fd in (self._to_worker, self._from_worker):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to_worker = self._from_worker = -1
        self._shared = None  # the mapping goes with the last view of it
        self._layouts = {}
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def close(self) -> None:
        """Stop the worker and remove the scratch directory it was given by default."""
        self._stop_worker()
        if self._own_scratch and not self._closed:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)
        self._closed = True

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to report to
            pass

    # Calls -----------------------------------------------------------------------------------
    def __call__(self, obs: Any, act: Any, next_obs: Any, terminated: Any) -> RewardOutput:
        """The reward ``[N]`` and its components of N transitions, computed in the worker.

        Args:
            obs: ``[N, ...]`` s_t (or a dict of such arrays).
            act: ``[N, ...]`` a_t.
            next_obs: ``[N, ...]`` s_{t+1}.
            terminated: ``[N]`` bool.

        Returns:
            ``RewardOutput(reward [N] float32, components {name: [N] float32})``.

        Raises:
            ValueError: ``terminated`` is not of shape [N] with N >= 1.
            RewardCodeError: the code raised, returned something other than finite float
                arrays of shape [N], ran past its time or memory, or its worker died; a fresh
                worker serves the next call.
        """
        terminated = np.asarray(terminated)
        if terminated.ndim != 1 or terminated.shape[0] == 0:
            raise ValueError(f"terminated: expected shape [N] with N >= 1, got {terminated.shape}")
        n = int(terminated.shape[0])
        if self._cpu_s > 0.9 * self.limits.lifetime_cpu_s:
            self._stop_worker()  # retire the worker before its lifetime CPU limit kills it mid-call
        self.start()
        if self._shared is not None and type(obs) is type(act) is type(next_obs) is np.ndarray:
            layout = self._layout(obs, act, next_obs, terminated)
            if layout is not None:
                return self._call_shared(layout, (obs, act, next_obs, terminated), n)
        request = {"op": "call", "n": n, "obs": obs, "act": act, "next_obs": next_obs, "terminated": terminated}
        try:
            header, body = self._request(request, "calling compute_reward")
        except _WorkerGoneError as gone:
            self._stop_worker()
            raise RewardCodeError([gone.error]) from None
        if not header.get("ok"):
            raise RewardCodeError(_errors_from(header))
        self._cpu_s = float(header.get("cpu_s", 0.0))
        names = header.get("components")
        if (
            header.get("n") != n
            or not isinstance(names, list)
            or not all(isinstance(name, str) and name.isidentifier() for name in names)
            or len(body) != 8 * n * (1 + len(names))
        ):
            self._stop_worker()
            raise RewardCodeError([CodeError("WorkerDied", "the worker sent a malformed reply")])
        with np.errstate(over="ignore"):  # an overflow is reported below, as an error
            rows = np.frombuffer(body, "<f8").reshape(1 + len(names), n).astype(np.float32)
        if not np.isfinite(rows).all():  # finite float64 that overflows float32
            raise RewardCodeError([CodeError("InvalidReward", "reward or components overflow float32")])
        return RewardOutput(rows[0].copy(), {name: rows[1 + i].copy() for i, name in enumerate(names)})

    def _layout(self, *arrays: np.ndarray) -> _Layout | None:
        """The shared-memory layout of a batch of these dtypes and shapes; None: it goes pickled."""
        key = tuple((array.dtype, array.shape) for array in arrays)
        try:
            return self._layouts[key]
        except KeyError:
            pass
        shared = self._shared
        assert shared is not None
        n = arrays[-1].shape[0]
        layout = None
        if all(array.dtype.kind in "biuf" for array in arrays):
            offset, specs = 0, []
            for array in arrays:
                specs.append((array.dtype.str, array.shape, offset))
                offset += -(-array.nbytes // _ALIGN) * _ALIGN
            out_bytes = 8 * (1 + (1 + self.limits.max_components) * n)
            if offset + out_bytes <= shared.nbytes:
                memory = shared.view(np.uint8)
                inputs = tuple(
                    memory[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
                    for array, (_, _, start) in zip(arrays, specs, strict=True)
                )
                payload = pickle.dumps({"op": "call", "n": n, "shared": specs, "out": offset}, pickle.HIGHEST_PROTOCOL)
                layout = _Layout(inputs, offset // 8, _LENGTH.pack(len(payload)) + payload)
        if len(self._layouts) >= 64:
            self._layouts.clear()
        self._layouts[key] = layout
        return layout

    def _call_shared(self, layout: _Layout, arrays: tuple[np.ndarray, ...], n: int) -> RewardOutput:
        for view, array in zip(layout.inputs, arrays, strict=True):
            np.copyto(view, array)
        try:
            deadline = time.monotonic() + self.limits.wall_s_per_call
            self._write(layout.message, deadline, "calling compute_reward")
            self._poll.sent()
            if not self._buffer:
                self._poll.wait()
            encoded, body = self._receive_raw(deadline, "calling compute_reward")
            self._poll.received()
        except _WorkerGoneError as gone:
            self._stop_worker()
            raise RewardCodeError([gone.error]) from None
        names = self._replies.get((n, encoded))
        if names is None:
            header = _parse_header(encoded, "calling compute_reward")
            if not header.get("ok"):
                raise RewardCodeError(_errors_from(header))
            names = header.get("components")
            if (
                header.get("shared") is not True
                or header.get("n") != n
                or not isinstance(names, list)
                or len(names) > self.limits.max_components
                or not all(isinstance(name, str) and name.isidentifier() for name in names)
            ):
                self._stop_worker()
                raise RewardCodeError([CodeError("WorkerDied", "the worker sent a malformed reply")])
            if len(self._replies) >= 64:
                self._replies.clear()
            self._replies[n, encoded] = names
        elif body:
            self._stop_worker()
            raise RewardCodeError([CodeError("WorkerDied", "the worker sent a malformed reply")])
        shared = self._shared
        assert shared is not None
        start = layout.out_start
        # Copied out of the shared memory first, then checked: the worker cannot change what is checked.
        with np.errstate(over="ignore"):  # an overflow is reported below, as an error
            rows = shared[start + 1 : start + 1 + (1 + len(names)) * n].astype(np.float32)
        self._cpu_s = float(shared[start])
        if not np.isfinite(rows).all():  # finite float64 that overflows float32, or a worker that lies
            raise RewardCodeError([CodeError("InvalidReward", "reward or components overflow float32")])
        rows = rows.reshape(1 + len(names), n)
        return RewardOutput(rows[0], {name: rows[1 + i] for i, name in enumerate(names)})

    def _request(self, request: dict[str, Any], doing: str) -> tuple[dict[str, Any], bytes]:
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        deadline = time.monotonic() + self.limits.wall_s_per_call
        self._write(_LENGTH.pack(len(payload)) + payload, deadline, doing)
        return self._receive(max(0.0, deadline - time.monotonic()), doing, deadline)

    def _write(self, data: bytes, deadline: float, doing: str) -> None:
        if len(data) <= _PIPE_BUF:  # requests alternate with replies, so the pipe is empty here
            try:
                if os.write(self._to_worker, data) == len(data):
                    return
            except OSError:
                raise _WorkerGoneError(self._gone_error("WorkerDied", doing)) from None
            raise _WorkerGoneError(
                CodeError("WorkerDied", f"the pipe to the worker took part of a request while {doing}")
            )
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            _, ready, _ = select.select([], [self._to_worker], [], max(0.0, remaining))
            if not ready:
                raise _WorkerGoneError(self._gone_error("Timeout", doing))
            try:
                view = view[os.write(self._to_worker, view[: 1 << 16]) :]
            except OSError:
                raise _WorkerGoneError(self._gone_error("WorkerDied", doing)) from None

    def _receive(self, timeout_s: float, doing: str, deadline: float | None = None) -> tuple[dict[str, Any], bytes]:
        deadline = time.monotonic() + timeout_s if deadline is None else deadline
        encoded, body = self._receive_raw(deadline, doing)
        return _parse_header(encoded, doing), body

    def _receive_raw(self, deadline: float, doing: str) -> tuple[bytes, bytes]:
        """One reply: its JSON header's bytes and its body."""
        buffer = self._buffer
        self._fill(8, deadline, doing)
        header_end = 16 + _LENGTH.unpack_from(buffer)[0]
        if header_end - 16 > _MAX_HEADER_BYTES:
            raise _WorkerGoneError(CodeError("WorkerDied", f"the worker broke the protocol while {doing}"))
        self._fill(header_end, deadline, doing)
        body_size = _LENGTH.unpack_from(buffer, header_end - 8)[0]
        if body_size > 8 * (1 << 31):
            raise _WorkerGoneError(CodeError("WorkerDied", f"the worker broke the protocol while {doing}"))
        self._fill(header_end + body_size, deadline, doing)
        encoded, body = bytes(buffer[8 : header_end - 8]), bytes(buffer[header_end : header_end + body_size])
        del buffer[: header_end + body_size]
        return encoded, body

    def _fill(self, size: int, deadline: float, doing: str) -> None:
        # Whatever the pipe holds is read at once (a reply usually arrives whole): one wake-up per reply.
        buffer = self._buffer
        while len(buffer) < size:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_worker], [], [], max(0.0, remaining))
            if not ready:
                raise _WorkerGoneError(self._gone_error("Timeout", doing))
            chunk = os.read(self._from_worker, max(size - len(buffer), 1 << 16))
            if not chunk:
                raise _WorkerGoneError(self._gone_error("WorkerDied", doing))
            buffer += chunk

    def _gone_error(self, kind: str, doing: str) -> CodeError:
        if kind == "Timeout":
            return CodeError(
                "Timeout", f"{doing} took longer than {self.limits.wall_s_per_call:g} s; the worker was killed"
            )
        process = self._process
        code = None
        if process is not None:
            try:
                code = process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
        reason = _describe_exit(code)
        return CodeError("WorkerDied", f"the worker died while {doing} ({reason})")


def _parse_header(encoded: bytes, doing: str) -> dict[str, Any]:
    try:
        header = json.loads(encoded)
    except ValueError:
        header = None
    if not isinstance(header, dict):
        raise _WorkerGoneError(CodeError("WorkerDied", f"the worker broke the protocol while {doing}"))
    return header


def _describe_exit(code: int | None) -> str:
    import signal

    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        hint = {"SIGXCPU": "CPU time limit", "SIGKILL": "killed", "SIGSEGV": "crash", "SIGSYS": "forbidden system call"}
        return f"signal {name}" + (f": {hint[name]}" if name in hint else "")
    return f"exit status {code}"


def _errors_from(header: dict[str, Any]) -> list[CodeError]:
    errors = []
    for error in header.get("errors", ())[:8]:
        if isinstance(error, dict):
            line = error.get("line")
            errors.append(
                CodeError(
                    str(error.get("type", "Error"))[:100],
                    str(error.get("message", ""))[:2000],
                    line if isinstance(line, int) and not isinstance(line, bool) else None,
                )
            )
    return errors or [CodeError("WorkerDied", "the worker reported a failure without details")]
