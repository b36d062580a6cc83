"""rewardlab.search: prompts, Eureka's loop and resume, failed candidates, ICPL's choice, Text2Reward, the CLI.

The searches run on replies recorded from the real local model (``tests/data/search_replies``,
written by its ``record.py``), loaded into the client's reply cache: the client points at a
port where nothing listens, so a request the recording did not make fails loudly instead of
being answered. Candidates are scored by ``tests/search_trainer.py`` (deterministic, no agent);
one slow test runs an iteration end to end against the real server with PPO.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rewardlab.llm import ChatCache, ChatClient, CodeReward, EndpointUnreachableError, LLMError, load_code_reward
from rewardlab.rl import make_env
from rewardlab.search import (
    GenerationConfig,
    SearchConfig,
    TerminalPreference,
    TrainConfig,
    TrueReturnTeacher,
    env_context,
    eureka,
    eureka_feedback,
    expert_example,
    failures_text,
    generate_candidates,
    icpl,
    reflection_text,
    text2reward,
    text2reward_messages,
    train_all,
    train_candidate,
)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from search_trainer import correlation_trainer  # noqa: E402

_spec = importlib.util.spec_from_file_location("search_replies_record", HERE / "data" / "search_replies" / "record.py")
assert _spec is not None and _spec.loader is not None
_record = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_record)
CONFIG, T2R, TASK = _record.CONFIG, _record.T2R, _record.TASK
HINT_CONFIG, HINT_TASK = _record.HINT_CONFIG, _record.HINT_TASK

RECORDED = json.loads((HERE / "data" / "search_replies" / "replies.json").read_text())
NOWHERE = "http://127.0.0.1:9/v1"


@pytest.fixture
def client(tmp_path):
    """A client whose every answer is a recorded reply of the real model (nothing listens at its URL)."""
    cache = ChatCache(tmp_path / "replies.sqlite")
    for pair in RECORDED["replies"]:
        cache.put(pair["request"], pair["reply"])
    return ChatClient(base_url=NOWHERE, cache=cache, max_retries=0)


def test_replies_were_recorded_from_the_local_model():
    assert RECORDED["model_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert RECORDED["replies"] and all(pair["reply"]["model"] for pair in RECORDED["replies"])


def test_env_context_gives_layouts_and_the_indices_meaning():
    text = env_context("Pendulum-v1")
    assert "obs: float32 array [N, 3]; obs[:, 0] in [-1, 1]" in text
    assert "act[:, 0] in [-2, 2]" in text
    assert "theta = 0 is upright" in text
    assert env_context("Pendulum-v1", notes="custom notes", source=False).endswith("custom notes")
    # The env's own observation code, without its reward (as Eureka gives it)
    assert "np.array([np.cos(theta), np.sin(theta), thetadot], dtype=np.float32)" in text
    cheetah = env_context("HalfCheetah-v5")
    assert "position = position[1:]" in cheetah and "reward" not in cheetah.split("observation code")[1].lower()
    from rewardlab.llm import env_source

    cartpole = env_source(make_env("CartPole-v1"))  # no observation method: its step, less reward, render, asserts
    assert "self.state = np.array((x, x_dot, theta, theta_dot)" in cartpole
    assert all(word not in cartpole for word in ("reward", "render", "assert", "logger"))


def test_first_prompt_holds_contract_env_and_task(client, tmp_path):
    result = eureka(TASK, "Pendulum-v1", client, tmp_path / "run", CONFIG, trainer=correlation_trainer)
    system, user = result.iterations[0]["messages"]
    assert "def compute_reward(obs, act, next_obs, terminated):" in system["content"]
    assert env_context("Pendulum-v1") in user["content"] and TASK in user["content"]
    assert "We trained a policy" not in user["content"]
    # Every request was one the recording made: all answers came from the cache.
    assert client.usage.calls == client.usage.cached_calls == CONFIG.iterations * CONFIG.candidates


def test_reflection_gives_components_and_true_return_along_training():
    candidate = {
        "code": "def compute_reward(obs, act, next_obs, terminated):\n    return obs[:, 0], {}",
        "components": {"upright": [0.0, 0.5, 1.0]},
        "returns_along": [-900.0, None, -300.0],
        "fitness": -150.0,
    }
    lines = reflection_text(candidate).splitlines()
    assert lines[0] == "Reward function:" and lines[2].startswith("def compute_reward")
    assert "upright: [0.00, 0.50, 1.00], max 1.00, mean 0.50, min 0.00" in lines
    # The checkpoint without a finished episode is left out; the final fitness closes the series.
    assert "true return: [-900.00, -300.00, -150.00], max -150.00, mean -450.00, min -900.00" in lines
    failed = {"index": 3, "status": "failed", "errors": [{"type": "NameError", "message": "x", "line": 2}]}
    assert failures_text([failed, {"index": 4, "status": "trained"}]) == (
        "Other candidates failed:\ncandidate 3: NameError: line 2: x"
    )


def test_refused_requests_give_the_model_no_error_to_fix():
    refused = {
        "index": 0,
        "status": "failed",
        "code": None,
        "errors": [{"type": "LLMError", "message": "HTTP 500: failed to parse the reply", "line": None}],
    }
    broken = {
        "index": 1,
        "status": "failed",
        "code": "x(",
        "errors": [{"type": "SyntaxError", "message": "bad", "line": 1}],
    }
    assert failures_text([refused]) == ""
    assert eureka_feedback({"chosen": None, "candidates": [refused]}) is None
    feedback = eureka_feedback({"chosen": None, "candidates": [refused, broken]})
    assert feedback is not None and "SyntaxError" in feedback and "HTTP 500" not in feedback


def test_fittest_candidate_is_chosen_reflected_and_kept(client, tmp_path):
    result = eureka(TASK, "Pendulum-v1", client, tmp_path / "run", CONFIG, trainer=correlation_trainer)
    best_overall = -np.inf
    for record in result.iterations:
        trained = [c for c in record["candidates"] if c["status"] == "trained"]
        if not trained:
            assert record["chosen"] is None and np.isnan(result.fitness_per_iteration[record["iteration"]])
            continue
        fitness = [c["fitness"] for c in trained]
        assert record["candidates"][record["chosen"]]["fitness"] == max(fitness) == record["best_fitness"]
        assert [record["candidates"][i]["fitness"] for i in record["ranking"]] == sorted(fitness, reverse=True)
        best_overall = max(best_overall, max(fitness))
    first = result.iterations[0]
    if first["chosen"] is not None:  # the next prompt carries the fittest code and its reflection
        next_user = result.iterations[1]["messages"][1]["content"]
        assert first["candidates"][first["chosen"]]["code"].strip() in next_user
        assert "true return: [" in next_user and "We trained a policy" in next_user
    if np.isfinite(best_overall):
        assert result.best_fitness == best_overall
        saved = load_code_reward(tmp_path / "run" / "best_reward.json")
        assert saved.code == result.best_code and saved.origin["method"] == "eureka"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["pass_rate_per_iteration"] == [r["passed"] / CONFIG.candidates for r in result.iterations]


def test_history_holds_prompts_replies_code_checks_and_fitness(client, tmp_path):
    eureka(TASK, "Pendulum-v1", client, tmp_path / "run", CONFIG, trainer=correlation_trainer)
    record = json.loads((tmp_path / "run" / "iterations" / "iteration_000.json").read_text())
    recorded_replies = {pair["reply"]["content"] for pair in RECORDED["replies"]}
    for candidate in record["candidates"]:
        assert candidate["reply"] in recorded_replies
        assert candidate["status"] in ("trained", "failed")
        if candidate["status"] == "failed":
            assert candidate["errors"] and candidate["errors"][0]["type"]
        else:
            assert candidate["code"] and "fitness" in candidate and "components" in candidate
    assert set(record["wall_s"]) == {"generation", "checks", "training"}
    header = json.loads((tmp_path / "run" / "search.json").read_text())
    assert header["method"] == "eureka" and header["config"]["candidates"] == CONFIG.candidates


def test_resume_does_not_redo_an_iteration_on_disk(client, tmp_path):
    run = tmp_path / "run"
    eureka(TASK, "Pendulum-v1", client, run, CONFIG, trainer=correlation_trainer)
    first = (run / "iterations" / "iteration_000.json").read_bytes()
    (run / "iterations" / "iteration_001.json").unlink()
    trained: list[str] = []

    def counting(code: str, env_id: str, config: TrainConfig) -> dict:
        trained.append(code)
        return correlation_trainer(code, env_id, config)

    result = eureka(TASK, "Pendulum-v1", client, run, CONFIG, trainer=counting)
    assert (run / "iterations" / "iteration_000.json").read_bytes() == first
    assert len(trained) == result.iterations[1]["passed"]  # only iteration 1 was trained again
    # With every iteration on disk nothing is asked: a client without cache and endpoint would fail.
    offline = ChatClient(base_url=NOWHERE, cache=False, max_retries=0)
    again = eureka(TASK, "Pendulum-v1", offline, run, CONFIG, trainer=counting)
    assert offline.usage.calls == 0
    np.testing.assert_equal(again.fitness_per_iteration, result.fitness_per_iteration)
    assert again.iterations == result.iterations
    with pytest.raises(ValueError, match=r"run_dir: .* other settings"):
        eureka(TASK, "Pendulum-v1", offline, run, SearchConfig(iterations=3), trainer=counting)


def test_failed_candidates_are_recorded_and_the_search_goes_on(client, tmp_path):
    def broken(code: str, env_id: str, config: TrainConfig) -> dict:
        raise RuntimeError("the trainer broke")

    one = SearchConfig(iterations=1, candidates=CONFIG.candidates, generation=CONFIG.generation)
    result = eureka(TASK, "Pendulum-v1", client, tmp_path / "run", one, trainer=broken)
    (record,) = result.iterations
    assert record["chosen"] is None and result.best_code is None and np.isnan(result.best_fitness)
    assert all(c["status"] == "failed" and c["errors"] for c in record["candidates"])
    # Code that reached the trainer failed with the trainer's reason; the next prompt asks for a fix.
    assert any(c["errors"][0] == {"type": "RuntimeError", "message": "the trainer broke", "line": None}
               for c in record["candidates"]) or record["passed"] == 0  # fmt: skip
    assert "failed" in record["feedback_next"] and "Fix the error" in record["feedback_next"]
    assert not (tmp_path / "run" / "best_reward.json").exists()


def test_recorded_icpl_round_records_each_failure_and_prefers_the_candidate_that_ran(client, tmp_path):
    teacher = TrueReturnTeacher()
    result = icpl(HINT_TASK, "Pendulum-v1", client, tmp_path / "run", teacher, HINT_CONFIG, trainer=correlation_trainer)
    (record,) = result.iterations
    assert client.usage.calls == client.usage.cached_calls == HINT_CONFIG.candidates
    # What the 135M model wrote for this prompt: the first candidate (the hint's expression) runs,
    # the other two fail, each with its reason (an index error, an undefined name).
    assert [c["status"] for c in record["candidates"]] == ["trained", "failed", "failed"]
    assert [c["errors"][0]["type"] for c in record["candidates"][1:]] == ["IndexError", "NameError"]
    assert record["chosen"] == 0 and record["ranking"] == [0] and result.best_code is not None
    assert "preferred this one" in record["feedback_next"] and "true return" in record["feedback_next"]


def _standin():
    """The HTTP stand-in of tests/test_llm.py, serving a recorded reply of the real model whose code runs."""
    spec = importlib.util.spec_from_file_location("test_llm_standin", HERE / "test_llm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._Endpoint(module.RECORDED["pendulum_json_expression"]["reply"])


@pytest.mark.parametrize("method", ["icpl", "eureka"])
def test_preferred_candidate_conditions_the_next_generation_and_best_is_kept(method, tmp_path):
    served = _standin()
    returns = iter([-500.0, -100.0, -300.0, -400.0, -50.0, -200.0])

    def trainer(code: str, env_id: str, config: TrainConfig) -> dict:
        record = correlation_trainer(code, env_id, config)
        record["fitness"] = next(returns)
        return record

    client = ChatClient(base_url=served.url, cache=False, max_retries=0)
    config = SearchConfig(iterations=2, candidates=3, generation=CONFIG.generation)
    try:
        if method == "icpl":
            result = icpl(TASK, "Pendulum-v1", client, tmp_path / "run", TrueReturnTeacher(), config, trainer=trainer)
        else:
            result = eureka(TASK, "Pendulum-v1", client, tmp_path / "run", config, trainer=trainer)
    finally:
        served.close()
    first, second = result.iterations
    assert [c["status"] for c in first["candidates"]] == ["trained"] * 3
    assert first["ranking"] == [1, 2, 0] and first["chosen"] == 1 and second["chosen"] == 1
    next_prompt = served.requests[3]["messages"][1]["content"]
    assert next_prompt == second["messages"][1]["content"]
    assert "-100.00" in next_prompt and first["candidates"][1]["code"].strip() in next_prompt
    if method == "icpl":
        assert "preferred this one" in next_prompt and "They liked this one least" in next_prompt
    else:
        assert "We trained a policy" in next_prompt and "preferred" not in next_prompt
    assert result.fitness_per_iteration == [-100.0, -50.0]
    assert result.best_fitness == -50.0 and result.best_iteration == 1
    saved = load_code_reward(tmp_path / "run" / "best_reward.json")
    assert saved.origin == {"method": method, "model": client.model, "iteration": 1, "candidate": 1}


def test_teacher_ranking_prefers_the_higher_true_return():
    teacher = TrueReturnTeacher()
    assert teacher.rank([{"fitness": -800.0}, {"fitness": -150.0}, {"fitness": -400.0}]) == [1, 2, 0]


def test_terminal_preference_shows_summaries_and_takes_the_answer():
    shown: list[str] = []
    answers = iter(["7", "1"])
    person = TerminalPreference(ask=lambda prompt: next(answers), show=shown.append, render=lambda c: "video.mp4")
    candidates = [
        {"index": 0, "behaviour": {"episode_length": 200, "obs_mean": [0.1], "obs_std": [0.2]}},
        {"index": 3, "behaviour": {"episode_length": 200, "obs_mean": [0.9], "obs_std": [0.1]}},
    ]
    assert person.rank(candidates) == [1, 0]
    assert shown[0].startswith("[0] candidate 0: episode of 200 steps") and "video.mp4" in shown[1]
    assert any("got '7'" in line for line in shown)


def test_text2reward_zero_shot_replays_the_recorded_reply(client, tmp_path):
    candidate = text2reward(TASK, "Pendulum-v1", client, generation=T2R, run_dir=tmp_path / "t2r")
    assert client.usage.cached_calls == 1 and candidate["mode"] == "zero-shot"
    saved = json.loads((tmp_path / "t2r" / "text2reward.json").read_text())
    assert saved["reply"] == candidate["reply"] and saved["status"] == candidate["status"]
    assert (tmp_path / "t2r" / "reward.json").exists() == (candidate["status"] == "checked")


def test_text2reward_few_shot_and_refinement_prompts():
    few = text2reward_messages(TASK, "Pendulum-v1", examples=True)[1]["content"]
    assert "Expert-written reward functions" in few
    assert expert_example("Pendulum-v1").strip() in few and expert_example("HalfCheetah-v5").strip() in few
    code = "import numpy as np\n\ndef compute_reward(obs, act, next_obs, terminated):\n    return obs[:, 0], {}"
    refine = text2reward_messages(TASK, "Pendulum-v1", code=code, critique="It spins in circles.")[1]["content"]
    assert code in refine and "Feedback on the policy trained with it: It spins in circles." in refine
    with pytest.raises(ValueError, match="code, critique"):
        text2reward_messages(TASK, "Pendulum-v1", critique="no code")


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "HalfCheetah-v5"])
def test_shipped_expert_examples_run_as_rewards(env_id):
    from search_trainer import transitions

    obs, act, next_obs, dones, _ = transitions(env_id, size=8)
    with CodeReward(expert_example(env_id)) as reward:
        output = reward.evaluate(obs, act, next_obs, dones)
    assert output.reward.shape == (8,) and output.components


def test_cli_names_an_unreachable_endpoint(tmp_path):
    from typer.testing import CliRunner

    from rewardlab.cli import app

    result = CliRunner().invoke(
        app,
        ["eureka", "--task", "Swing up.", "--iterations", "1", "--candidates", "1", "--base-url", NOWHERE,
         "--out-dir", str(tmp_path)],
        env={"REWARDLAB_LLM_CACHE": "off"},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "127.0.0.1:9" in result.output and "rewardlab llm serve" in result.output


def test_train_candidate_records_components_and_true_return():
    config = TrainConfig(
        total_timesteps=128, eval_episodes=1, checkpoints=2, agent_kwargs={"n_steps": 32, "batch_size": 32}
    )
    record = train_candidate(expert_example("Pendulum-v1"), "Pendulum-v1", config)
    assert record["status"] == "trained" and np.isfinite(record["fitness"])
    assert set(record["components"]) == {"angle", "velocity", "effort"}
    assert all(len(values) == 2 for values in record["components"].values())
    assert record["behaviour"]["episode_length"] == 200 and record["behaviour"]["true_return"] == record["fitness"]
    failing = "def compute_reward(obs, act, next_obs, terminated):\n    return obs[:, 0] / 0 * 0 + obs[:, 5], {}"
    broken = train_candidate(failing, "Pendulum-v1", config)
    assert broken["status"] == "failed" and broken["errors"][0]["type"] == "IndexError"


@pytest.mark.slow
def test_candidates_train_in_a_process_pool():
    config = TrainConfig(
        total_timesteps=64, eval_episodes=1, checkpoints=1, agent_kwargs={"n_steps": 32, "batch_size": 32}
    )
    code = expert_example("Pendulum-v1")
    pooled = train_all([(code, "Pendulum-v1", config)] * 2, train_candidate, workers=2)
    alone = train_all([(code, "Pendulum-v1", config)], train_candidate, workers=1)
    assert [r["fitness"] for r in pooled] == [alone[0]["fitness"]] * 2


@pytest.mark.slow
def test_one_eureka_iteration_end_to_end_against_the_local_model(tmp_path):
    from rewardlab.llm import LocalServer

    config = SearchConfig(
        iterations=1,
        candidates=1,
        generation=GenerationConfig(temperature=0.0, max_tokens=200, single_expression=True),
        training=TrainConfig(
            total_timesteps=256, eval_episodes=1, checkpoints=2, agent_kwargs={"n_steps": 64, "batch_size": 64}
        ),
    )
    with LocalServer() as server:
        client = server.client(cache=False, timeout_s=1800.0)
        result = eureka(TASK, "Pendulum-v1", client, tmp_path / "run", config, trainer=train_candidate)
    (candidate,) = result.iterations[0]["candidates"]
    assert candidate["reply"] and candidate["status"] in ("trained", "failed")
    if candidate["status"] == "trained":
        assert np.isfinite(candidate["fitness"]) and result.best_code == candidate["code"]
    assert (tmp_path / "run" / "iterations" / "iteration_000.json").exists()


def test_unreachable_endpoint_stops_the_search(tmp_path):
    offline = ChatClient(base_url=NOWHERE, cache=False, max_retries=0)
    with pytest.raises(EndpointUnreachableError, match=r"127\.0\.0\.1:9"):
        eureka(TASK, "Pendulum-v1", offline, tmp_path / "run", CONFIG, trainer=correlation_trainer)


def test_a_refused_request_counts_as_generation_time():
    class Refusing:  # an endpoint that generates, then refuses its own output (llama.cpp's HTTP 500)
        def chat(self, *args, **kwargs):
            time.sleep(0.05)
            raise LLMError("chat endpoint refused the request (HTTP 500)")

    (candidate,) = generate_candidates(Refusing(), [{"role": "user", "content": "x"}], 1, GenerationConfig())
    assert candidate["status"] == "failed" and candidate["errors"][0]["type"] == "LLMError"
    assert candidate["latency_s"] >= 0.05  # the iteration's split counts it as generation, not as checks
