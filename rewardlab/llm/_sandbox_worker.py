"""The sandbox worker: runs one generated reward function in a locked-down process.

Started by :class:`rewardlab.llm.Sandbox` as ``python -I <this file> <config json>``; a standalone
script that imports the standard library and NumPy only, never rewardlab. Before it reads any
generated code it: asks the kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``), moves
into its scratch directory, imports what the code may use, sets its resource limits (address
space, file size, open files, processes, core files; CPU time per call), leaves the network
namespace and becomes ``nobody`` when it runs as root, and installs a seccomp filter (x86-64 Linux) under which every
system call that opens or changes a path, creates a process or a socket, signals another
process, traces or maps another process's memory, or loads kernel code fails with ``EPERM``.
The code then runs with a reduced set of builtins, an ``__import__`` that gives only ``math``
and a copy of ``numpy`` without its file, ctypes and test doors.

Protocol, on two pipes whose descriptors the config names: a request (parent → worker) is an
8-byte little-endian length and a pickle (the parent is trusted); a reply is an 8-byte length
and a JSON header, then an 8-byte length and raw little-endian float64 rows (the reward, then
each component), so the parent never unpickles anything the worker writes.

Where the parent hands over a shared-memory file (``shm_fd``: a memfd sealed against shrinking
and growing, mapped here before any limit or filter goes in and its descriptor closed), a call
whose batch fits travels through it instead: the parent writes the arrays at the offsets its
small request names (the same request bytes for every call of one layout), the worker copies
them out for the code, writes its CPU time and the float64 rows at the request's output offset
and replies with the JSON header alone (``"shared": true``, the same bytes while the components
stay the same). The request and the reply are then the only bytes on the pipes.
"""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import platform
import resource
import select
import signal
import struct
import sys
import time
import traceback
import types
from typing import Any

_LENGTH = struct.Struct("<Q")
_NOBODY = 65534
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_CLONE_NEWNET = 0x40000000
_AUDIT_ARCH_X86_64 = 0xC000003E
_SECCOMP_RET_ALLOW = 0x7FFF0000
_SECCOMP_RET_KILL_PROCESS = 0x80000000
_SECCOMP_RET_EPERM = 0x00050000 | 1
# x86-64 system calls that fail with EPERM once the filter is in: paths (open, create, rename,
# link, remove, chmod, chown, mount), processes (fork, clone, exec), sockets, signals to other
# processes, tracing, other processes' memory, namespaces, kernel modules, io_uring, bpf.
_DENIED_X86_64 = (
    2,  # open
    85,  # creat
    257,  # openat
    437,  # openat2
    76,  # truncate
    82,  # rename
    264,  # renameat
    316,  # renameat2
    83,  # mkdir
    258,  # mkdirat
    84,  # rmdir
    86,  # link
    265,  # linkat
    87,  # unlink
    263,  # unlinkat
    88,  # symlink
    266,  # symlinkat
    90,  # chmod
    268,  # fchmodat
    92,  # chown
    94,  # lchown
    260,  # fchownat
    133,  # mknod
    259,  # mknodat
    161,  # chroot
    155,  # pivot_root
    165,  # mount
    166,  # umount2
    41,  # socket
    53,  # socketpair
    42,  # connect
    49,  # bind
    56,  # clone
    435,  # clone3
    57,  # fork
    58,  # vfork
    59,  # execve
    322,  # execveat
    62,  # kill
    200,  # tkill
    234,  # tgkill
    129,  # rt_sigqueueinfo
    297,  # rt_tgsigqueueinfo
    424,  # pidfd_send_signal
    434,  # pidfd_open
    438,  # pidfd_getfd
    101,  # ptrace
    310,  # process_vm_readv
    311,  # process_vm_writev
    272,  # unshare
    308,  # setns
    29,  # shmget
    319,  # memfd_create
    175,  # init_module
    313,  # finit_module
    176,  # delete_module
    246,  # kexec_load
    320,  # kexec_file_load
    169,  # reboot
    167,  # swapon
    168,  # swapoff
    321,  # bpf
    298,  # perf_event_open
    323,  # userfaultfd
    425,  # io_uring_setup
    426,  # io_uring_enter
    427,  # io_uring_register
    250,  # keyctl
    248,  # add_key
    249,  # request_key
    105,  # setuid
    106,  # setgid
    117,  # setresuid
    119,  # setresgid
)
_ALLOWED_BUILTINS = (
    "abs",
    "all",
    "any",
    "bool",
    "complex",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "frozenset",
    "int",
    "isinstance",
    "len",
    "list",
    "map",
    "max",
    "min",
    "pow",
    "print",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
    "ArithmeticError",
    "AssertionError",
    "Exception",
    "FloatingPointError",
    "IndexError",
    "KeyError",
    "LookupError",
    "OverflowError",
    "RuntimeError",
    "TypeError",
    "ValueError",
    "ZeroDivisionError",
)
# NumPy's doors to files, foreign code, subprocesses and the interpreter (kept in step with
# FORBIDDEN_ATTRIBUTES of rewardlab/llm/_contract.py, which the static checks use).
_NUMPY_REMOVED = frozenset(
    {
        "ctypeslib",
        "lib",
        "testing",
        "f2py",
        "distutils",
        "load",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "fromregex",
        "memmap",
        "DataSource",
        "show_config",
        "show_runtime",
        "get_include",
        "typing",
        "os",
        "sys",
    }
)


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(3)


def _leave_network() -> bool:
    """A fresh network namespace (no interface but a down loopback) when running as root."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    return _libc().unshare(_CLONE_NEWNET) == 0


def _set_limits(config: dict[str, Any]) -> dict[str, Any]:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    file_bytes = int(config["file_size_mb"] * 2**20)
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    _, nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = (
        int(config["open_files"]) if nofile_hard == resource.RLIM_INFINITY else min(config["open_files"], nofile_hard)
    )
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    # Address space: what the interpreter and NumPy hold now plus the budget.
    with open("/proc/self/status") as handle:
        vm_kb = next((int(line.split()[1]) for line in handle if line.startswith("VmSize:")), 0)
    address_space = vm_kb * 1024 + int(config["memory_mb"] * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    processes_limited = True
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    except (ValueError, OSError):
        processes_limited = False
    cpu_hard = int(config["lifetime_cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_hard, cpu_hard))
    return {"address_space_bytes": address_space, "rlimit_nproc": processes_limited and os.geteuid() != 0}


def _drop_root(parent_pid: int) -> bool:
    """Run as ``nobody`` from here on when started as root: no capabilities, so no raising of the limits."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    os.setgroups([])
    os.setgid(_NOBODY)
    os.setuid(_NOBODY)
    _die_with_parent(parent_pid)  # a change of user clears the parent-death signal
    return True


def _install_seccomp() -> bool:
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        return False

    class SockFilter(ctypes.Structure):
        _fields_ = (("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint))

    class SockFprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter)))

    load_word, jump_equal, jump_at_least, ret = 0x20, 0x15, 0x35, 0x06
    program = [
        (load_word, 0, 0, 4),  # seccomp_data.arch
        (jump_equal, 1, 0, _AUDIT_ARCH_X86_64),
        (ret, 0, 0, _SECCOMP_RET_KILL_PROCESS),
        (load_word, 0, 0, 0),  # seccomp_data.nr
        (jump_at_least, 0, 1, 0x40000000),  # the x32 ABI
        (ret, 0, 0, _SECCOMP_RET_EPERM),
    ]
    for number in _DENIED_X86_64:
        program += [(jump_equal, 0, 1, number), (ret, 0, 0, _SECCOMP_RET_EPERM)]
    program.append((ret, 0, 0, _SECCOMP_RET_ALLOW))
    filters = (SockFilter * len(program))(*[SockFilter(*instruction) for instruction in program])
    fprog = SockFprog(len(program), filters)
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0


def _guarded_builtins(numpy: Any, math: Any) -> dict[str, Any]:
    """Builtins of the generated code: a reduced set and an importer of math and a trimmed numpy.

    Built before the seccomp filter goes in: reading NumPy's attributes loads its lazy submodules.
    """
    safe_numpy = types.ModuleType("numpy", numpy.__doc__)
    for name in dir(numpy):
        if not name.startswith("_") and name not in _NUMPY_REMOVED:
            setattr(safe_numpy, name, getattr(numpy, name))
    modules = {"numpy": safe_numpy, "math": math}
    for name in ("linalg", "random", "fft", "polynomial", "ma"):
        modules[f"numpy.{name}"] = getattr(numpy, name)

    def restricted_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> Any:
        if level or name not in modules:
            raise ImportError(f"import of {name}: only numpy and math may be imported")
        return modules[name] if fromlist or "." not in name else modules[name.split(".")[0]]

    builtins_module = __builtins__ if isinstance(__builtins__, dict) else vars(__builtins__)
    safe_builtins = {name: builtins_module[name] for name in _ALLOWED_BUILTINS}
    safe_builtins["__import__"] = restricted_import
    return safe_builtins


def _error(kind: str, message: str, line: int | None = None) -> dict[str, Any]:
    return {"type": kind, "message": message[:2000], "line": line}


def _exception_error(error: BaseException) -> dict[str, Any]:
    line = None
    for frame, lineno in traceback.walk_tb(error.__traceback__):
        if frame.f_code.co_filename == "<reward>":
            line = lineno
    try:
        message = str(error)
    except Exception:  # noqa: BLE001 - an exception whose message cannot be built still reports its type
        message = "(no message)"
    if isinstance(error, SystemExit):
        message = f"the code called exit ({message})"
    public = next((cls.__name__ for cls in type(error).__mro__ if not cls.__name__.startswith("_")), "Exception")
    return _error(public, message, line)


def _checked(value: Any, n: int, what: str, numpy: Any) -> Any:
    """``value`` as an array of real numbers of shape [n] (its finiteness is checked by the caller)."""
    array = numpy.asarray(value)
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise _InvalidRewardError(f"{what}: expected a float array of shape [{n}], got dtype {array.dtype}")
    if array.shape != (n,):
        if array.shape == () and what != "reward":
            raise _InvalidRewardError(f"{what}: expected a float array of shape [{n}], got a scalar")
        raise _InvalidRewardError(f"{what}: expected a float array of shape [{n}], got shape {array.shape}")
    return array


def _check_finite(row: Any, n: int, what: str, numpy: Any) -> None:
    finite = numpy.isfinite(row)
    if not finite.all():
        raise _InvalidRewardError(f"{what}: {n - int(finite.sum())} of {n} values are NaN or infinite")


def _as_rows(value: Any, n: int, what: str, numpy: Any) -> Any:
    array = _checked(value, n, what, numpy).astype("<f8")
    _check_finite(array, n, what, numpy)
    return array


class _InvalidRewardError(Exception):
    pass


class _CpuLimit:
    """The per-call CPU limit: RLIMIT_CPU's soft limit at the CPU time used so far plus a call's budget.

    Set before each call, and only when it moves (it counts whole seconds), so a call costs a
    clock read rather than two ``setrlimit``; the hard limit stays the worker's lifetime budget.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.hard = int(config["lifetime_cpu_s"])
        self.per_call = float(config["cpu_s_per_call"])
        self.soft = self.hard

    def before_call(self) -> float:
        """Set the limit for the call about to run; the CPU seconds used before it."""
        used = time.process_time()
        soft = min(self.hard, int(used + self.per_call) + 1)
        if soft != self.soft:
            resource.setrlimit(resource.RLIMIT_CPU, (soft, self.hard))
            self.soft = soft
        return used

    def lift(self) -> None:
        if self.soft != self.hard:
            resource.setrlimit(resource.RLIMIT_CPU, (self.hard, self.hard))
            self.soft = self.hard


def _outputs(result: Any, config: dict[str, Any]) -> tuple[Any, dict[Any, Any]]:
    if not isinstance(result, tuple) or len(result) != 2:
        raise _InvalidRewardError(f"compute_reward must return (reward, components), got {type(result).__name__}")
    reward, components = result
    if not isinstance(components, dict):
        raise _InvalidRewardError(
            f"components: expected a dict of name -> float array [N], got {type(components).__name__}"
        )
    if len(components) > config["max_components"]:
        raise _InvalidRewardError(f"components: at most {config['max_components']} components, got {len(components)}")
    for name in components:
        if not isinstance(name, str) or not name.isidentifier() or len(name) > 64:
            raise _InvalidRewardError(
                f"components: names must be identifiers of at most 64 characters, got {name!r:.80}"
            )
    return reward, components


def _call(
    function: Any, request: dict[str, Any], numpy: Any, config: dict[str, Any], cpu: _CpuLimit
) -> tuple[dict, bytes]:
    n = int(request["n"])
    cpu.before_call()
    reward, components = _outputs(
        function(request["obs"], request["act"], request["next_obs"], request["terminated"]), config
    )
    rows = [_as_rows(reward, n, "reward", numpy)]
    rows += [_as_rows(value, n, f"components[{name!r}]", numpy) for name, value in components.items()]
    header = {"ok": True, "n": n, "components": list(components), "cpu_s": time.process_time()}
    return header, b"".join(row.tobytes() for row in rows)


class _SharedCall:
    """One layout of a call through shared memory: views of its inputs and of its output block."""

    def __init__(self, request: dict[str, Any], shared: Any, numpy: Any) -> None:
        self.n = int(request["n"])
        self.inputs = [
            numpy.ndarray(tuple(shape), numpy.dtype(dtype), shared, int(offset))
            for dtype, shape, offset in request["shared"]
        ]
        self.out_offset = int(request["out"])
        self.shared = shared
        self.headers: dict[tuple[str, ...], bytes] = {}

    def __call__(self, function: Any, numpy: Any, config: dict[str, Any], cpu: _CpuLimit) -> bytes:
        """Run the code on a copy of the inputs; write [CPU s, rows...] at the output offset; the header."""
        n = self.n
        args = [view.copy() for view in self.inputs]  # the code gets arrays of its own, as from a pickle
        used = cpu.before_call()  # reported as the worker's CPU time: one clock read per call
        reward, components = _outputs(function(*args), config)
        names = tuple(components)
        arrays = [_checked(reward, n, "reward", numpy)]
        arrays += [_checked(value, n, f"components[{name!r}]", numpy) for name, value in components.items()]
        block = numpy.ndarray((1 + len(arrays) * n,), "<f8", self.shared, self.out_offset)
        rows = block[1:].reshape(len(arrays), n)
        for row, array in zip(rows, arrays, strict=True):
            row[...] = array
        if not numpy.isfinite(rows).all():
            for what, row in zip(("reward", *(f"components[{name!r}]" for name in names)), rows, strict=True):
                _check_finite(row, n, what, numpy)
        block[0] = used
        header = self.headers.get(names)
        if header is None:
            header = json.dumps({"ok": True, "n": n, "components": list(names), "shared": True}).encode()
            self.headers[names] = header
        return header


def _send(fd: int, header: dict[str, Any], body: bytes = b"") -> None:
    _send_encoded(fd, json.dumps(header).encode(), body)


def _send_encoded(fd: int, encoded: bytes, body: bytes = b"") -> None:
    view = memoryview(_LENGTH.pack(len(encoded)) + encoded + _LENGTH.pack(len(body)) + body)  # one write, one wake-up
    while view:
        view = view[os.write(fd, view) :]


class PipePoll:
    """Polls a pipe for the other side's next message for a while before the caller sleeps on it.

    A process asleep in ``read`` is woken by the kernel when a message arrives; where the CPU it
    slept on has gone idle (a virtual machine's idle vCPU), that wake-up costs tens of
    microseconds, twice per call. Polling for at most ``window_s`` keeps both sides awake while
    messages follow each other closely. It polls only while the last wait was shorter than the
    window, yields the CPU on every round, and stops polling for the next 8 waits (doubling up to
    4,096 while it keeps happening) when a round shows it was preempted: another process wanted
    this CPU. Used on both sides of the sandbox's pipes (standard library only).

    Args:
        fd: the descriptor to poll (readable once a message is there).
        window_s: the longest poll in seconds; 0 never polls.
        clock: the time source (seconds).

    Attributes:
        polls: waits that polled; caught: of them, those that found a message.
    """

    PREEMPTED_S = 100e-6
    MAX_SKIP = 4096

    def __init__(self, fd: int, window_s: float, clock: Any = time.perf_counter) -> None:
        self.fd = fd
        self.window_s = float(window_s)
        self.clock = clock
        self.since = clock()
        self.last_wait_s = 0.0
        self.skip = 0
        self.backoff = 8
        self.polls = 0
        self.caught = 0

    def sent(self) -> None:
        """This side's message went out: the wait for the answer starts."""
        self.since = self.clock()

    def received(self) -> None:
        """The answer came in: the length of this wait decides whether the next one polls."""
        self.last_wait_s = self.clock() - self.since

    def wait(self) -> None:
        """Return once the pipe is readable, or at once when this wait does not poll, or when polling gives up."""
        if self.window_s <= 0 or self.last_wait_s > self.window_s:
            return
        if self.skip:
            self.skip -= 1
            return
        self.polls += 1
        clock, fd = self.clock, [self.fd]
        now = clock()
        end = now + self.window_s
        while True:
            if select.select(fd, [], [], 0)[0]:
                self.caught += 1
                self.backoff = 8
                return
            os.sched_yield()
            previous, now = now, clock()
            if now - previous > self.PREEMPTED_S:
                self.skip, self.backoff = self.backoff, min(2 * self.backoff, self.MAX_SKIP)
                return
            if now > end:
                return


class _Requests:
    """Requests from the parent: an 8-byte length and the payload, read in as few system calls as they allow."""

    def __init__(self, fd: int, poll: PipePoll) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self.poll = poll

    def _fill(self, size: int) -> None:
        while len(self.buffer) < size:
            if not self.buffer:
                self.poll.wait()
            chunk = os.read(self.fd, max(size - len(self.buffer), 1 << 16))
            if not chunk:
                raise EOFError
            self.buffer += chunk

    def next(self) -> bytes:
        self._fill(8)
        end = 8 + _LENGTH.unpack_from(self.buffer)[0]
        self._fill(end)
        payload = bytes(self.buffer[8:end])
        del self.buffer[:end]
        self.poll.received()
        return payload


def _map_shared(config: dict[str, Any]) -> Any:
    """The parent's shared-memory file, mapped; its descriptor closed. None without one."""
    fd = int(config.get("shm_fd", -1))
    if fd < 0:
        return None
    import mmap

    try:
        return mmap.mmap(fd, int(config["shm_bytes"]))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def main() -> None:
    config = json.loads(sys.argv[1])
    in_fd, out_fd = int(config["in_fd"]), int(config["out_fd"])
    _die_with_parent(int(config["parent_pid"]))
    os.chdir(config["scratch_dir"])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # too much output raises OSError instead of killing
    import math

    import numpy

    for name in ("linalg", "random", "fft", "polynomial", "ma"):  # NumPy loads these lazily: load them now
        getattr(numpy, name)
    numpy.random.default_rng(0).random(2)
    shared = _map_shared(config)  # before the limits: the address-space budget comes on top of it
    isolation = {"network_namespace": _leave_network(), "shared_memory": shared is not None}
    isolation.update(_set_limits(config))
    guards = bool(config["python_guards"])
    safe_builtins = _guarded_builtins(numpy, math) if guards else None
    isolation["dropped_root"] = _drop_root(int(config["parent_pid"]))
    isolation["seccomp"] = _install_seccomp() if config["seccomp"] else False
    isolation["python_guards"] = guards
    _send(out_fd, {"ok": True, "ready": True, "isolation": isolation, "pid": os.getpid()})
    function = None
    cpu = _CpuLimit(config)
    poll = PipePoll(in_fd, float(config["poll_us"]) * 1e-6)
    requests = _Requests(in_fd, poll)
    shared_calls: dict[bytes, _SharedCall] = {}  # request bytes -> its layout: one per shape of batch
    while True:
        try:
            payload = requests.next()
        except EOFError:
            os._exit(0)
        started = time.perf_counter()
        shared_call = shared_calls.get(payload)
        try:
            if shared_call is None:
                request = pickle.loads(payload)
                if request["op"] == "call" and "shared" in request and shared is not None:
                    if len(shared_calls) >= 64:
                        shared_calls.clear()
                    shared_call = shared_calls[payload] = _SharedCall(request, shared, numpy)
            if shared_call is not None:
                if function is None:
                    raise _InvalidRewardError("no code is loaded")
                encoded = shared_call(function, numpy, config, cpu)
                try:
                    _send_encoded(out_fd, encoded)
                except OSError:
                    os._exit(4)
                poll.sent()
                continue
            if request["op"] == "load":
                cpu.lift()
                namespace: dict[str, Any] = {"__name__": "reward"}
                if safe_builtins is not None:
                    namespace["__builtins__"] = dict(safe_builtins)
                exec(compile(request["code"], "<reward>", "exec"), namespace)
                function = namespace.get("compute_reward")
                if not callable(function):
                    raise _InvalidRewardError("the code defines no function compute_reward")
                header: dict[str, Any] = {"ok": True, "loaded": True}
                body = b""
            elif request["op"] == "call":
                if function is None:
                    raise _InvalidRewardError("no code is loaded")
                header, body = _call(function, request, numpy, config, cpu)
            else:
                os._exit(0)
        except _InvalidRewardError as error:
            header, body = {"ok": False, "errors": [_error("InvalidReward", str(error))]}, b""
        except BaseException as error:  # noqa: BLE001 - anything the generated code raises is reported, never fatal
            header, body = {"ok": False, "errors": [_exception_error(error)]}, b""
        header["wall_s"] = time.perf_counter() - started
        try:
            _send(out_fd, header, body)
        except OSError:
            os._exit(4)
        poll.sent()


if __name__ == "__main__":
    main()
