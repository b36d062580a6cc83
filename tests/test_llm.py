"""rewardlab.llm: reply parsing, static checks, the chat client and its cache, CodeReward as a RewardFn.

The model replies used here were recorded from the real local model by
tests/data/llm_replies/record.py; the client tests talk HTTP to a small stand-in endpoint that
sends those recorded replies back.
"""

from __future__ import annotations

import json
import pickle
import re
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rewardlab.llm import (
    BASE_URL_ENV,
    MODEL_ENV,
    ChatCache,
    ChatClient,
    CodeError,
    CodeReward,
    EndpointUnreachableError,
    LLMError,
    RewardCodeError,
    check_reward_code,
    checked_code,
    extract_code,
    load_code_reward,
    reply_schema,
    request_key,
    reward_messages,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chat_standin import ChatStandIn

REPLIES = Path(__file__).parent / "data" / "llm_replies"
RECORDED = {path.stem: json.loads(path.read_text()) for path in sorted(REPLIES.glob("*.json"))}
GOOD = (
    "import numpy as np\n"
    "import math\n"
    "\n"
    "def compute_reward(obs, act, next_obs, terminated):\n"
    "    theta = np.arctan2(next_obs[:, 1], next_obs[:, 0])\n"
    "    upright = -np.square(theta)\n"
    "    effort = -0.001 * np.square(act[:, 0])\n"
    "    return upright + effort, {'upright': upright, 'effort': effort}\n"
)


def _pendulum_reward(next_obs: np.ndarray, act: np.ndarray) -> np.ndarray:
    theta = np.arctan2(next_obs[:, 1], next_obs[:, 0])
    return (-(theta**2) - 0.001 * act[:, 0] ** 2).astype(np.float32)


# Extraction -------------------------------------------------------------------------------------
def test_replies_were_recorded_from_the_local_model():
    assert {"pendulum_json", "pendulum_free", "pendulum_json_signature", "pendulum_json_expression"} <= set(RECORDED)
    for record in RECORDED.values():
        assert record["model_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
        if "records" in record:  # a batch of labelling replies (tests/data/llm_replies/record_nethack.py)
            assert record["records"] and all(item["reply"] for item in record["records"])
        else:
            assert ("error" in record) or (record["completion_tokens"] > 0 and record["reply"])


@pytest.mark.parametrize("name", ["pendulum_json", "pendulum_json_expression"])
def test_constrained_replies_give_the_json_code_field(name):
    reply = RECORDED[name]["reply"]
    code = extract_code(reply)
    if RECORDED[name]["finish_reason"] == "stop":  # complete JSON: the field, verbatim
        assert code == json.loads(reply, strict=False)["code"].strip("\n").rstrip()
    assert code and not code.lstrip().startswith("{")


def test_signature_constrained_reply_starts_with_the_contract():
    name = "pendulum_json_expression"
    assert RECORDED[name]["finish_reason"] == "stop"  # the bounded pattern closes the JSON before the token limit
    code = extract_code(RECORDED[name]["reply"])
    assert code.startswith("import numpy as np\n\ndef compute_reward(obs, act, next_obs, terminated):\n")
    assert re.fullmatch(
        RECORDED[name]["request"]["response_format"]["json_schema"]["schema"]["properties"]["code"]["pattern"], code
    )


def test_expression_reply_runs_as_a_reward_on_pendulum():
    # The model's reply under the single-expression grammar: reward = np.zeros(len(obs)).
    from rewardlab.wrappers import RewardWrapper

    with CodeReward.from_reply(RECORDED["pendulum_json_expression"]["reply"]) as reward:
        env = RewardWrapper(gym.make("Pendulum-v1"), reward)
        env.reset(seed=0)
        _, learned, _, _, info = env.step(np.array([0.3], np.float32))
        assert learned == 0.0 and info["true_reward"] < 0
        env.close()


def test_free_schema_reply_is_rejected_with_its_reason():
    # The model's reply under the free {"code": str} schema: `npm run compute_reward`.
    assert check_reward_code(extract_code(RECORDED["pendulum_json"]["reply"])) == (
        CodeError("SyntaxError", "invalid syntax", 1),
    )


def test_free_reply_passes_the_checks_and_fails_in_the_sandbox():
    # The model's unconstrained reply: a stub `return (1, 1)`, then copies of itself until the token limit.
    code = extract_code(RECORDED["pendulum_free"]["reply"])
    assert check_reward_code(code) == ()
    with CodeReward(code) as reward, pytest.raises(RewardCodeError) as caught:
        reward(np.ones((3, 3)), np.zeros((3, 1)), np.ones((3, 3)), np.zeros(3, bool))
    (error,) = caught.value.errors
    assert error.type == "InvalidReward" and error.message.startswith("components: expected a dict")


def test_free_reply_gives_a_code_block_or_the_reason():
    reply = RECORDED["pendulum_free"]["reply"]
    if "```" not in reply and "def compute_reward" not in reply and "import " not in reply:
        with pytest.raises(RewardCodeError, match="NoCode"):
            extract_code(reply)
    else:
        assert extract_code(reply) in reply  # a block of the reply, not a rewrite of it


def test_extract_prefers_the_block_that_defines_compute_reward():
    reply = "First:\n```python\nx = 1\n```\nThen:\n```python\ndef compute_reward(obs, act, next_obs, terminated):\n    return 0\n```\nDone."
    assert extract_code(reply) == "def compute_reward(obs, act, next_obs, terminated):\n    return 0"
    assert extract_code("```\nimport math\n") == "import math"  # an unclosed last fence
    assert extract_code("Sure.\nimport numpy as np\ndef compute_reward(a, b, c, d): pass") == (
        "import numpy as np\ndef compute_reward(a, b, c, d): pass"
    )


def test_cut_off_json_reply_gives_the_code_so_far():
    assert (
        extract_code('{"code": "import numpy as np\\ndef compute_reward(obs')
        == "import numpy as np\ndef compute_reward(obs"
    )
    assert extract_code('{"code": "a\nb"}') == "a\nb"  # raw newline inside the string


@pytest.mark.parametrize("reply", ["", "   ", "I cannot help with that.", '{"answer": 3}'])
def test_code_less_reply_is_a_no_code_error(reply):
    with pytest.raises(RewardCodeError) as caught:
        extract_code(reply)
    assert caught.value.errors[0].type == "NoCode"


def test_reply_schema_forces_the_header_only_when_asked():
    assert "pattern" not in reply_schema(fix_signature=False)["properties"]["code"]
    assert reply_schema()["required"] == ["code"]


# Static checks ----------------------------------------------------------------------------------
def test_good_code_passes_the_checks():
    assert check_reward_code(GOOD) == ()
    assert checked_code(GOOD, is_reply=False) == GOOD


@pytest.mark.parametrize(
    ("body", "kind", "line"),
    [
        ("import os", "ForbiddenImport", 1),
        ("from subprocess import run", "ForbiddenImport", 1),
        ("from . import x", "ForbiddenImport", 1),
        ("import numpy.ctypeslib", "ForbiddenImport", 1),
        ("from numpy.lib import format", "ForbiddenImport", 1),
        ("from numpy import load", "ForbiddenImport", 1),
        ("x = ().__class__", "ForbiddenAttribute", 1),
        ("x = (1).__class__.__subclasses__()", "ForbiddenAttribute", 1),
        ("x = compute_reward.__globals__", "ForbiddenAttribute", 1),
        ("x = open('/etc/passwd')", "ForbiddenName", 1),
        ("x = eval('1')", "ForbiddenName", 1),
        ("exec('1')", "ForbiddenName", 1),
        ("x = getattr(1, 'real')", "ForbiddenName", 1),
        ("x = __import__('os')", "ForbiddenName", 1),
        ("x = globals()", "ForbiddenName", 1),
        ("breakpoint()", "ForbiddenName", 1),
        ("import numpy as np\nx = np.load('f.npy')", "ForbiddenAttribute", 2),
        ("import numpy as np\nnp.zeros(1).tofile('f')", "ForbiddenAttribute", 2),
        ("class A:\n    pass", "ForbiddenName", 1),
        ("x = (lambda: (yield))().gi_frame", "ForbiddenAttribute", 1),
    ],
)
def test_checks_reject_escapes_with_type_and_line(body, kind, line):
    code = body + "\n\ndef compute_reward(obs, act, next_obs, terminated):\n    return obs[:, 0], {}\n"
    errors = check_reward_code(code)
    assert errors[0].type == kind and errors[0].line == line, errors


@pytest.mark.parametrize(
    "code",
    [
        "def reward(obs, act, next_obs, terminated):\n    return 0",
        "def compute_reward(obs, act, next_obs):\n    return 0",
        "def compute_reward(obs, act, next_obs, terminated=None):\n    return 0",
        "def compute_reward(*args):\n    return 0",
    ],
)
def test_checks_want_the_signature(code):
    (error,) = check_reward_code(code)
    assert error.type == "Signature"


def test_syntax_errors_carry_the_line():
    (error,) = check_reward_code("def compute_reward(obs, act, next_obs, terminated):\n    return (\n")
    assert error.type == "SyntaxError" and error.line in (2, 3)
    assert str(CodeError("X", "m", 4)) == "X: line 4: m"


def test_reward_messages_carry_contract_task_and_feedback():
    messages = reward_messages("Balance.", "obs[:, 0] = x", feedback="SyntaxError: line 2: ...")
    assert "def compute_reward(obs, act, next_obs, terminated):" in messages[0]["content"]
    assert "Balance." in messages[1]["content"] and messages[1]["content"].endswith("SyntaxError: line 2: ...")
    with pytest.raises(ValueError, match="task"):
        reward_messages(" ", "x")


# Cache and client -------------------------------------------------------------------------------
def test_cache_is_keyed_by_the_full_request_and_survives_reopening(tmp_path):
    path = tmp_path / "cache.sqlite"
    request = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0.0}
    ChatCache(path).put(request, {"content": "y"})
    reopened = ChatCache(path)
    assert reopened.get(dict(reversed(list(request.items())))) == {"content": "y"}
    assert reopened.get({**request, "temperature": 0.5}) is None
    assert len(reopened) == 1
    assert request_key(request) != request_key({**request, "seed": 1})
    import sqlite3

    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


class _Endpoint(ChatStandIn):
    """An OpenAI-compatible stand-in: answers chat completions with a recorded reply, failing first if asked."""

    def __init__(self, content: str, fail_first: int = 0, status: int = 503, error_message: str = "busy") -> None:
        def answer(body: dict) -> tuple[int, str | dict]:
            if len(self.requests) <= fail_first:
                return status, {"error": {"code": status, "message": error_message}}
            return 200, content

        super().__init__(answer)


@pytest.fixture
def endpoint():
    served = _Endpoint(RECORDED["pendulum_json_expression"]["reply"])
    yield served
    served.close()


def test_client_counts_tokens_and_answers_a_repeat_from_the_cache(endpoint, tmp_path):
    client = ChatClient(base_url=endpoint.url, model="m", cache=tmp_path / "c.sqlite", max_retries=0)
    messages = [{"role": "user", "content": "reward?"}]
    first = client.chat(messages, json_schema=reply_schema(), seed=3)
    assert (first.content, first.prompt_tokens, first.completion_tokens, first.cached) == (
        RECORDED["pendulum_json_expression"]["reply"],
        11,
        7,
        False,
    )
    sent = endpoint.requests[0]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == reply_schema()
    assert (sent["seed"], sent["temperature"], sent["model"]) == (3, 0.0, "m")
    again = ChatClient(base_url=endpoint.url.replace("127.0.0.1", "localhost"), model="m", cache=tmp_path / "c.sqlite")
    second = again.chat(messages, json_schema=reply_schema(), seed=3)
    assert second.cached and second.content == first.content and len(endpoint.requests) == 1
    assert (client.usage.calls, client.usage.prompt_tokens, again.usage.cached_calls) == (1, 11, 1)


def test_client_retries_busy_endpoints_with_backoff():
    served = _Endpoint("ok", fail_first=2)
    try:
        client = ChatClient(base_url=served.url, cache=False, max_retries=2, backoff_s=0.0)
        assert client.chat([{"role": "user", "content": "x"}]).content == "ok"
        assert len(served.requests) == 3 and client.usage.retries == 2
    finally:
        served.close()
    served = _Endpoint("ok", fail_first=5)
    try:
        with pytest.raises(LLMError, match="after 2 attempts"):
            ChatClient(base_url=served.url, cache=False, max_retries=1, backoff_s=0.0).chat(
                [{"role": "user", "content": "x"}]
            )
    finally:
        served.close()


def test_server_refusing_its_own_constrained_output_is_an_llm_error():
    # Recorded: llama.cpp answered HTTP 500 when the model wrapped its constrained JSON in a ```json fence.
    record = RECORDED["pendulum_json_signature"]
    assert "Error code: 500" in record["error"]
    message = record["error"].split("Error code: 500 - ", 1)[1]
    served = _Endpoint("unused", fail_first=5, status=500, error_message=message)
    try:
        client = ChatClient(base_url=served.url, cache=False, max_retries=1, backoff_s=0.0)
        with pytest.raises(LLMError, match="after 2 attempts") as caught:
            client.chat([{"role": "user", "content": "x"}])
        assert message in str(caught.value) and len(served.requests) == 2
    finally:
        served.close()


def test_client_does_not_retry_a_refused_request():
    served = _Endpoint("ok", fail_first=1, status=400)
    try:
        with pytest.raises(LLMError, match="HTTP 400"):
            ChatClient(base_url=served.url, cache=False, max_retries=3, backoff_s=0.0).chat(
                [{"role": "user", "content": "x"}]
            )
        assert len(served.requests) == 1
    finally:
        served.close()


def test_unreachable_endpoint_names_the_url_and_the_local_server():
    client = ChatClient(base_url="http://127.0.0.1:9/v1", cache=False, max_retries=1, backoff_s=0.0)
    with pytest.raises(EndpointUnreachableError) as caught:
        client.chat([{"role": "user", "content": "x"}])
    message = str(caught.value)
    assert "http://127.0.0.1:9/v1" in message and "rewardlab llm serve" in message and BASE_URL_ENV in message


def test_client_reads_the_environment(monkeypatch):
    monkeypatch.setenv(BASE_URL_ENV, "http://example.invalid:1/v1/")
    monkeypatch.setenv(MODEL_ENV, "big-model")
    client = ChatClient(cache=False)
    assert (client.base_url, client.model) == ("http://example.invalid:1/v1", "big-model")
    with pytest.raises(ValueError, match="messages"):
        client.chat([])
    with pytest.raises(ValueError, match="max_tokens"):
        client.chat([{"role": "user", "content": "x"}], max_tokens=0)


# CodeReward -------------------------------------------------------------------------------------
def test_code_reward_is_a_reward_fn_with_components():
    rng = np.random.default_rng(0)
    obs, next_obs = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    acts = rng.uniform(-2, 2, size=(5, 1))
    with CodeReward(GOOD) as reward:
        rewards = reward(obs, acts, next_obs, np.zeros(5, bool))
        assert rewards.dtype == np.float32 and rewards.shape == (5,)
        np.testing.assert_allclose(rewards, _pendulum_reward(next_obs, acts), rtol=1e-6)
        assert sorted(reward.last_components) == ["effort", "upright"]
        np.testing.assert_allclose(reward.last_components["effort"], -0.001 * acts[:, 0] ** 2, rtol=1e-6)


def test_code_reward_rejects_bad_code_before_running_it():
    with pytest.raises(RewardCodeError) as caught:
        CodeReward("import os\n" + GOOD)
    assert caught.value.errors[0] == CodeError(
        "ForbiddenImport", "import of os: only numpy and math may be imported", 1
    )


def test_code_reward_saves_and_loads_with_prompt_and_origin(tmp_path):
    messages = reward_messages("Balance.", "obs")
    reward = CodeReward(GOOD, prompt=messages, origin={"model": "m", "iteration": 2})
    path = reward.save(tmp_path / "reward.json")
    loaded = load_code_reward(path)
    assert (loaded.code, loaded.prompt, loaded.origin) == (GOOD, messages, {"model": "m", "iteration": 2})
    (tmp_path / "other.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a saved CodeReward"):
        load_code_reward(tmp_path / "other.json")


def test_code_reward_pickles_without_its_worker():
    with CodeReward(GOOD) as reward:
        reward(np.ones((1, 3)), np.ones((1, 1)), np.ones((1, 3)), np.zeros(1, bool))
        clone = pickle.loads(pickle.dumps(reward))
        with clone:
            np.testing.assert_allclose(
                clone(np.ones((2, 3)), np.ones((2, 1)), np.ones((2, 3)), np.zeros(2, bool)),
                reward(np.ones((2, 3)), np.ones((2, 1)), np.ones((2, 3)), np.zeros(2, bool)),
            )
        assert clone.sandbox is not reward.sandbox


def test_code_reward_drives_gymnasium_wrappers():
    from rewardlab.wrappers import RewardWrapper, VectorRewardWrapper

    with CodeReward(GOOD) as reward:
        env = RewardWrapper(gym.make("Pendulum-v1"), reward)
        obs, _ = env.reset(seed=0)
        for _ in range(3):
            action = np.array([0.5], np.float32)
            obs, learned, _, _, info = env.step(action)
            assert learned == pytest.approx(float(_pendulum_reward(obs[None], action[None])[0]), rel=1e-5)
            assert info["true_reward"] != learned
        envs = VectorRewardWrapper(gym.make_vec("Pendulum-v1", num_envs=4), reward)
        envs.reset(seed=0)
        actions = np.zeros((4, 1), np.float32)
        next_obs, learned_vec, *_ = envs.step(actions)
        np.testing.assert_allclose(learned_vec, _pendulum_reward(next_obs, actions), rtol=1e-5)
        env.close()
        envs.close()


def test_code_reward_goes_into_distances_unchanged():
    from rewardlab._types import Transitions
    from rewardlab.distances import sample_epic_distance
    from rewardlab.rewards import FunctionReward, as_reward_fn

    rng = np.random.default_rng(1)
    n = 64
    fields = {
        "obs": rng.normal(size=(n, 3)),
        "acts": rng.uniform(-2, 2, (n, 1)),
        "next_obs": rng.normal(size=(n, 3)),
        "dones": np.zeros(n, bool),
        "terminated": np.zeros(n, bool),
        "truncated": np.zeros(n, bool),
        "rews": np.zeros(n, np.float32),
    }
    transitions = Transitions(**{name: fields[name] for name in Transitions._fields})

    def same(obs, acts, next_obs, dones):
        import jax.numpy as jnp

        theta = jnp.arctan2(next_obs[:, 1], next_obs[:, 0])
        return -(theta**2) - 0.001 * acts[:, 0] ** 2

    with CodeReward(GOOD) as reward:
        result = sample_epic_distance(
            reward,
            as_reward_fn(FunctionReward(same)),
            transitions,
            0.99,
            num_transitions=16,
            num_samples=16,
            num_seeds=1,
        )
    assert result.mean < 1e-3


# Prompt pieces ----------------------------------------------------------------------------------
def test_describe_env_gives_the_layouts_and_bounds():
    from rewardlab.llm import describe_env, describe_space

    text = describe_env(gym.make("Pendulum-v1"), notes="theta = 0 is upright.")
    lines = text.splitlines()
    assert lines[0] == "gymnasium Pendulum-v1."
    assert lines[1].startswith(
        "obs: float32 array [N, 3]; obs[:, 0] in [-1, 1]; obs[:, 1] in [-1, 1]; obs[:, 2] in [-8, 8]"
    )
    assert lines[2] == "act: float32 array [N, 1]; act[:, 0] in [-2, 2]"
    assert lines[3] == "theta = 0 is upright."
    nested = gym.spaces.Dict({"goal": gym.spaces.MultiBinary(2), "cell": gym.spaces.MultiDiscrete([3, 4])})
    assert describe_space(nested, "obs").splitlines() == [  # gymnasium sorts a Dict's keys
        "obs['cell']: integer array [N, 2], column i in 0 .. nvec[i] - 1, nvec = [3, 4]",
        "obs['goal']: 0/1 array [N, 2]",
    ]
    with pytest.raises(ValueError, match="space: expected"):
        describe_space(gym.spaces.Text(3), "obs")


def test_error_feedback_and_reflection_follow_eureka():
    from rewardlab.llm import error_feedback, reward_reflection

    errors = [CodeError("ZeroDivisionError", "division by zero", 4), CodeError("Timeout", "took longer than 10 s")]
    text = error_feedback(errors, code=GOOD)
    assert "```python\n" + GOOD.strip() in text
    assert "ZeroDivisionError: line 4: division by zero\nTimeout: took longer than 10 s\n" in text
    with pytest.raises(ValueError, match="errors"):
        error_feedback([])
    reflection = reward_reflection({"upright": list(range(100)), "effort": [-1.0] * 100}, 7.5, points=5)
    assert "upright: [0.00, 25.00, 50.00, 74.00, 99.00], max 99.00, mean 49.50, min 0.00" in reflection
    assert "effort: [-1.00, -1.00, -1.00, -1.00, -1.00], max -1.00, mean -1.00, min -1.00" in reflection
    assert "task score: [7.50], max 7.50" in reflection
    messages = reward_messages("Balance.", "obs", feedback=reflection)
    assert messages[1]["content"].endswith("write a new, improved compute_reward.")
