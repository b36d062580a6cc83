"""The sandbox holds: a corpus of hostile reward code, each snippet contained, the parent unharmed.

The corpus runs with the static checks off, and by default with the Python guards off too, so
the process's own locks (seccomp filter, resource limits, dying with the parent) are what
stops each snippet; the same corpus with the guards on is marked slow.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import numpy as np
import pytest

from rewardlab.llm import RewardCodeError, Sandbox, SandboxLimits, check_reward_code
from rewardlab.llm._sandbox import shared_memory
from rewardlab.llm._sandbox_worker import PipePoll

HEADER = "import os\nimport numpy as np\nimport ctypes\nimport signal\nimport sys\n\n"
SIGNATURE = "def compute_reward(obs, act, next_obs, terminated):\n"
SECCOMP = sys.platform.startswith("linux") and platform.machine() == "x86_64"
needs_seccomp = pytest.mark.skipif(not SECCOMP, reason="the system-call filter is installed on x86-64 Linux only")


def _code(body: str, outside: str, prelude: str = "") -> str:
    indented = "".join(f"    {line}\n" for line in body.replace("OUTSIDE", outside).splitlines())
    return HEADER + prelude.replace("OUTSIDE", outside) + SIGNATURE + indented + "    return obs[:, 0], {}\n"


# name: (body, acceptable error types). Every body either raises or, where a C call reports
# failure by its return value, raises PermissionError itself; an escape would return a reward.
IMPORT_REFUSED = {"PermissionError", "ModuleNotFoundError", "ImportError"}
CORPUS = {
    "read_file": ("open('/etc/hostname').read()", {"PermissionError"}),
    "write_outside": ("open('OUTSIDE/written', 'w').write('x')", {"PermissionError"}),
    "write_scratch": ("open('in_scratch.txt', 'w').write('x')", {"PermissionError"}),
    "numpy_save": ("np.save('OUTSIDE/array.npy', obs)", {"PermissionError"}),
    "remove_file": ("os.remove('OUTSIDE/keep.txt')", {"PermissionError"}),
    "make_directory": ("os.mkdir('OUTSIDE/folder')", {"PermissionError"}),
    "rename_file": ("os.rename('OUTSIDE/keep.txt', 'OUTSIDE/moved.txt')", {"PermissionError"}),
    "fork": ("os.fork()", {"PermissionError"}),
    "subprocess_system": (
        "if os.system('touch OUTSIDE/by_system') != 0:\n    raise PermissionError('system refused')",
        {"PermissionError"},
    ),
    "exec": ("os.execv('/bin/sh', ['sh', '-c', 'touch OUTSIDE/by_exec'])", {"PermissionError"}),
    # A module not yet loaded cannot be read from disk: the import itself fails.
    "import_subprocess": ("import subprocess\nsubprocess.run(['touch', 'OUTSIDE/by_run'])", IMPORT_REFUSED),
    "socket_module": ("import socket\nsocket.create_connection(('127.0.0.1', 9))", IMPORT_REFUSED),
    "socket_syscall": (
        "if ctypes.CDLL(None).socket(2, 1, 0) < 0:\n    raise PermissionError('socket refused')",
        {"PermissionError"},
    ),
    "kill_parent": ("os.kill(os.getppid(), signal.SIGKILL)", {"PermissionError"}),
    "kill_parent_libc": (
        "if ctypes.CDLL(None).kill(os.getppid(), 9) != 0:\n    raise PermissionError('kill refused')",
        {"PermissionError"},
    ),
    "kill_group": ("os.killpg(0, signal.SIGKILL)", {"PermissionError"}),
    "memory_bomb": ("x = np.ones((10**6, 10**5))", {"MemoryError"}),
    "bytes_bomb": ("x = bytearray(10**11)", {"MemoryError"}),
    "cpu_bomb": ("while True:\n    pass", {"Timeout"}),
    "recursion": ("return compute_reward(obs, act, next_obs, terminated)", {"RecursionError"}),
    "huge_output": ("while True:\n    print('x' * 10**6)", {"OSError"}),
    "subclasses_escape": (
        (
            "wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]\n"
            "if wrap.__init__.__globals__['system']('touch OUTSIDE/by_subclasses') != 0:\n"
            "    raise PermissionError('system refused')"
        ),
        {"PermissionError"},
    ),
    "globals_escape": (
        "g = compute_reward.__globals__['os']\ng.open('OUTSIDE/by_globals', os.O_CREAT | os.O_WRONLY)",
        {"PermissionError"},
    ),
    "sys_exit": ("sys.exit(3)", {"SystemExit"}),
    "hard_exit": ("os._exit(3)", {"WorkerDied"}),
    "keyboard_interrupt": ("raise KeyboardInterrupt", {"KeyboardInterrupt"}),
    "forge_protocol": (
        (
            "for fd in range(3, 12):\n    try:\n        os.write(fd, b'\\xff' * 64)\n    except OSError:\n        pass\n"
            "raise ValueError('wrote garbage')"
        ),
        {"WorkerDied", "ValueError"},
    ),
    # The worker's own mapping of the shared memory, reached through the caller's frame: cutting
    # it short would leave the parent's mapping pointing past the file's end (SIGBUS).
    "shrink_shared_memory": ("sys._getframe(1).f_locals['self'].shared.resize(4096)", {"PermissionError"}),
    "raise_rlimit": (
        "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))",
        {"ValueError", "PermissionError"},
    ),
}
WRONG_REWARDS = {
    "nan": ("return obs[:, 0] * np.nan, {}", "NaN or infinite"),
    "inf_component": ("return obs[:, 0], {'bad': obs[:, 0] / 0.0}", "NaN or infinite"),
    "string": ("return 'high', {}", "dtype"),
    "column": ("return obs[:, :1], {}", "shape"),
    "scalar": ("return 1.0, {}", "shape"),
    "objects": ("return [None] * len(obs), {}", "dtype"),
    "no_components": ("return obs[:, 0]", "must return (reward, components)"),
    "components_list": ("return obs[:, 0], [obs[:, 0]]", "components"),
    "component_name": ("return obs[:, 0], {'a b': obs[:, 0]}", "identifiers"),
    "float32_overflow": ("return obs[:, 0] * 0.0 + 1e300, {}", "overflow float32"),
}


def _batch(n: int = 4) -> tuple[np.ndarray, ...]:
    obs = np.linspace(-1, 1, 3 * n).reshape(n, 3)
    return obs, np.zeros((n, 1)), obs + 0.5, np.zeros(n, bool)


def _snapshot(folder) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.fixture
def outside(tmp_path):
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "keep.txt").write_text("kept")
    return folder


def _run_hostile(name: str, outside, python_guards: bool, tmp_path) -> None:
    body, expected = CORPUS[name]
    prelude = "import os\n" if name == "globals_escape" else ""
    code = _code(body, str(outside), prelude)
    before = _snapshot(outside)
    scratch = tmp_path / "scratch"
    limits = SandboxLimits(wall_s_per_call=1.5, file_size_mb=1.0)
    sandbox = Sandbox(code, check=False, python_guards=python_guards, limits=limits, scratch_dir=scratch)
    try:
        with pytest.raises(RewardCodeError) as caught:
            sandbox(*_batch())
    finally:
        sandbox.close()
    kinds = {error.type for error in caught.value.errors}
    if python_guards:  # the guards may stop it first: a name or an import that is not there
        expected = expected | {"NameError", "ImportError", "AttributeError", "KeyError"}
    assert kinds & expected, caught.value.errors
    assert _snapshot(outside) == before  # nothing written, removed or renamed outside the scratch directory
    assert set(_snapshot(scratch)) <= {"output.log"}
    assert (scratch / "output.log").stat().st_size <= 2**20  # RLIMIT_FSIZE
    assert not sandbox.running


@needs_seccomp
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_code_is_contained_by_the_process_locks_alone(name, outside, tmp_path):
    _run_hostile(name, outside, python_guards=False, tmp_path=tmp_path)


@pytest.mark.slow
@needs_seccomp
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_code_is_contained_with_every_layer(name, outside, tmp_path):
    _run_hostile(name, outside, python_guards=True, tmp_path=tmp_path)


def test_the_static_checks_reject_every_hostile_snippet(outside):
    for name, (body, _) in CORPUS.items():
        if name in ("cpu_bomb", "recursion", "memory_bomb", "huge_output", "keyboard_interrupt"):
            continue  # harmless to the checks: plain Python that only the limits stop
        errors = check_reward_code(_code(body, str(outside)))
        assert errors and errors[0].type.startswith("Forbidden"), (name, errors)


@pytest.mark.parametrize("shared", [True, False], ids=["shared_memory", "pipe"])
def test_wrong_rewards_come_back_as_structured_errors(shared):
    # One worker serves every case: obs[0, 0] picks the return statement.
    cases = sorted(WRONG_REWARDS)
    branches = "".join(
        f"    if obs[0, 0] == {index}:\n        {WRONG_REWARDS[name][0]}\n" for index, name in enumerate(cases)
    )
    code = "import numpy as np\n" + SIGNATURE + branches + "    return obs[:, 0], {}\n"
    with Sandbox(code, shared_memory=shared) as sandbox:
        for index, name in enumerate(cases):
            obs = np.full((4, 3), float(index))
            with pytest.raises(RewardCodeError) as caught:
                sandbox(obs, np.zeros((4, 1)), obs, np.zeros(4, bool))
            (error,) = caught.value.errors
            assert error.type == "InvalidReward" and WRONG_REWARDS[name][1] in error.message, (name, error)
        assert sandbox.workers_started == 1  # a wrong value is no reason to replace the worker


def test_runtime_errors_carry_type_and_line():
    code = "import numpy as np\n" + SIGNATURE + "    x = obs[:, 0]\n    y = x[100]\n    return x, {}\n"
    with Sandbox(code) as sandbox, pytest.raises(RewardCodeError) as caught:
        sandbox(*_batch())
    (error,) = caught.value.errors
    assert (error.type, error.line) == ("IndexError", 4)


def test_python_guards_trim_builtins_and_numpy():
    cases = {
        "x = open": "NameError",
        "import os": "ImportError",
        "import numpy\nx = numpy.ctypeslib": "AttributeError",
        "from numpy import load": "ImportError",
        "x = __import__('importlib')": "ImportError",
    }
    for body, kind in cases.items():
        code = "import numpy as np\n" + SIGNATURE + "".join(f"    {line}\n" for line in body.splitlines())
        code += "    return obs[:, 0], {}\n"
        with Sandbox(code, check=False) as sandbox, pytest.raises(RewardCodeError) as caught:
            sandbox(*_batch())
        assert caught.value.errors[0].type == kind, (body, caught.value.errors)


def test_a_timed_out_worker_is_replaced_for_the_next_call():
    code = (
        "import numpy as np\n"
        + SIGNATURE
        + "    while obs[0, 0] > 0:\n        pass\n    return obs[:, 1], {'v': obs[:, 2]}\n"
    )
    with Sandbox(code, limits=SandboxLimits(wall_s_per_call=1.0)) as sandbox:
        with pytest.raises(RewardCodeError) as caught:
            sandbox(np.ones((2, 3)), np.zeros((2, 1)), np.ones((2, 3)), np.zeros(2, bool))
        assert caught.value.errors[0].type == "Timeout"
        obs = -np.arange(6.0).reshape(2, 3)
        out = sandbox(obs, np.zeros((2, 1)), obs, np.zeros(2, bool))
        assert out.reward.tolist() == [-1.0, -4.0] and out.components["v"].tolist() == [-2.0, -5.0]
        assert sandbox.workers_started == 2


def test_sandbox_serves_batches_and_reports_its_isolation():
    code = (
        "import numpy as np\nimport math\n"
        + SIGNATURE
        + "    r = np.sum(next_obs, axis=1) * math.pi\n    return r, {}\n"
    )
    with Sandbox(code) as sandbox:
        for n in (1, 7, 4096):
            obs = np.random.default_rng(n).normal(size=(n, 3)).astype(np.float32)
            out = sandbox(obs, np.zeros((n, 1)), obs, np.zeros(n, bool))
            np.testing.assert_allclose(out.reward, obs.sum(axis=1) * np.pi, rtol=1e-5)
            assert out.reward.dtype == np.float32
        assert sandbox.workers_started == 1
        assert sandbox.isolation["python_guards"] is True
        if SECCOMP:
            assert sandbox.isolation["seccomp"] is True
        if os.geteuid() == 0:
            assert sandbox.isolation["network_namespace"] is True
        with pytest.raises(ValueError, match="terminated"):
            sandbox(obs, obs, obs, np.zeros((2, 2), bool))


def test_shared_memory_is_sealed_against_shrinking_and_growing():
    shared = shared_memory(1 << 16)
    if shared is None:
        pytest.skip("no sealed memfd on this platform")
    fd, mapping = shared
    try:
        for size in (0, 4096, 1 << 17):
            with pytest.raises(PermissionError):
                os.ftruncate(fd, size)
        assert os.fstat(fd).st_size == 1 << 16
    finally:
        mapping.close()
        os.close(fd)


def test_batches_through_shared_memory_match_the_pipe():
    code = (
        "import numpy as np\n"
        + SIGNATURE
        + "    x = next_obs[:, 0] * 2.0 - act[:, 0]\n    return x + terminated, {'x': x, 'd': terminated}\n"
    )
    rng = np.random.default_rng(0)
    with Sandbox(code) as shared, Sandbox(code, shared_memory=False) as piped:
        if sys.platform.startswith("linux"):
            assert shared.isolation["shared_memory"] is True
        assert piped.isolation["shared_memory"] is False
        # Small and large batches, other dtypes and non-contiguous arrays; 120k rows no longer fit
        # the shared memory and go through the pipe.
        for n, dtype in ((8, np.float64), (8, np.float64), (3, np.float32), (5000, np.int32), (120_000, np.float64)):
            obs = rng.normal(size=(n, 4)).astype(dtype)
            act = rng.normal(size=(2, n)).T
            done = rng.random(n) < 0.5
            expected = obs[:, 0] * 2.0 - act[:, 0]
            for sandbox in (shared, piped):
                out = sandbox(obs[:, ::-1], act, obs, done)
                np.testing.assert_allclose(out.reward, (expected + done).astype(np.float32), rtol=1e-6)
                np.testing.assert_allclose(out.components["x"], expected.astype(np.float32), rtol=1e-6)
                assert out.components["d"].tolist() == done.astype(np.float32).tolist()
                assert out.reward.dtype == np.float32
        assert shared.workers_started == piped.workers_started == 1


def test_code_that_scribbles_over_the_shared_memory_changes_nothing_the_parent_reads():
    # The worker writes the rows after the code returns and the parent copies them out before
    # checking them, so the code's writes into the mapping never reach a result.
    code = (
        "import sys\nimport numpy as np\n"
        + SIGNATURE
        + "    frame = sys._getframe(1)\n    if 'self' in frame.f_locals:\n"
        + "        shared = frame.f_locals['self'].shared\n        shared[:] = b'\\xff' * len(shared)\n"
        + "    return obs[:, 0], {'y': obs[:, 1]}\n"
    )
    with Sandbox(code, check=False, python_guards=False) as sandbox:
        for _ in range(3):
            obs, act, next_obs, done = _batch()
            out = sandbox(obs, act, next_obs, done)
            assert out.reward.tolist() == obs[:, 0].astype(np.float32).tolist()
            assert out.components["y"].tolist() == obs[:, 1].astype(np.float32).tolist()
        assert sandbox.workers_started == 1
    with Sandbox("def compute_reward(obs, act, next_obs, terminated):\n    return obs['x'][:, 0], {}\n") as sandbox:
        out = sandbox({"x": np.ones((2, 3))}, np.zeros((2, 1)), {"x": np.ones((2, 3))}, np.zeros(2, bool))
        assert out.reward.tolist() == [1.0, 1.0]  # a dict of arrays goes pickled through the pipe


def test_worker_gets_no_credentials_from_the_environment(monkeypatch):
    monkeypatch.setenv("REWARDLAB_LLM_API_KEY", "secret-key")
    code = (
        "import os\nimport numpy as np\n" + SIGNATURE + "    if 'REWARDLAB_LLM_API_KEY' in os.environ:\n"
        "        raise ValueError('the key leaked')\n    return obs[:, 0], {}\n"
    )
    with Sandbox(code, check=False, python_guards=False) as sandbox:
        assert sandbox(*_batch()).reward.shape == (4,)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        return True


def test_worker_dies_with_its_parent(tmp_path):
    script = (
        "import sys, time\nfrom rewardlab.llm import Sandbox\n"
        "code = 'def compute_reward(obs, act, next_obs, terminated):\\n    return obs[:, 0], {}\\n'\n"
        "sandbox = Sandbox(code).start()\nprint(sandbox.worker_pid, flush=True)\ntime.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
    finally:
        parent.kill()
        parent.wait()
    for _ in range(600):  # the kernel delivers SIGKILL to the worker as the parent exits
        if not _alive(worker):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"worker {worker} outlived its parent")


class _Clock:
    """A clock that moves by the given steps (seconds), one per read, then keeps the last step."""

    def __init__(self, *steps: float) -> None:
        self.now, self.steps = 0.0, list(steps)

    def __call__(self) -> float:
        self.now += self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        return self.now


def test_pipe_poll_catches_a_waiting_message_and_gives_up_after_its_window():
    read_fd, write_fd = os.pipe()
    try:
        poll = PipePoll(read_fd, 1e-3, clock=_Clock(2e-6))
        poll.wait()  # nothing comes: polls through its 1 ms window, then returns
        assert (poll.polls, poll.caught) == (1, 0)
        os.write(write_fd, b"x")
        poll.wait()
        assert (poll.polls, poll.caught) == (2, 1)
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_pipe_poll_stops_when_waits_outlast_the_window_or_it_is_preempted():
    read_fd, write_fd = os.pipe()
    try:
        clock = _Clock(2e-6)
        poll = PipePoll(read_fd, 1e-3, clock=clock)
        poll.sent()
        clock.now += 5e-3  # the answer took 5 ms: the next wait sleeps at once
        poll.received()
        poll.wait()
        assert poll.polls == 0
        poll.sent()
        poll.received()  # a quick answer: polling resumes
        clock.steps = [2e-6, 2e-6, 500e-6, 2e-6]  # preempted for 0.5 ms inside the poll
        poll.wait()
        assert (poll.polls, poll.caught, poll.skip, poll.backoff) == (1, 0, 8, 16)
        for _ in range(8):
            poll.wait()  # the next 8 waits do not poll
        assert poll.polls == 1
        os.write(write_fd, b"x")
        poll.wait()
        assert (poll.polls, poll.caught, poll.backoff) == (2, 1, 8)
        never = PipePoll(read_fd, 0.0)
        never.wait()
        assert never.polls == 0
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.mark.parametrize("poll_us", [0.0, 50_000.0])
def test_polling_changes_no_result(poll_us):
    code = "import numpy as np\n" + SIGNATURE + "    x = next_obs[:, 0] - act[:, 0]\n    return x, {'x': x}\n"
    rng = np.random.default_rng(1)
    with Sandbox(code, limits=SandboxLimits(poll_us=poll_us)) as sandbox:
        for _ in range(20):
            obs, act = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
            out = sandbox(obs, act, obs, np.zeros(8, bool))
            np.testing.assert_allclose(out.reward, (obs[:, 0] - act[:, 0]).astype(np.float32), rtol=1e-6)
        assert sandbox.workers_started == 1


@pytest.mark.parametrize("poll_us", [-1.0, 2e6, float("nan"), True])
def test_sandbox_limits_name_a_bad_poll_window(poll_us):
    with pytest.raises(ValueError, match="poll_us"):
        SandboxLimits(poll_us=poll_us)
