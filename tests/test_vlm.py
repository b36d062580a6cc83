"""Vision-language rewards: the goal-baseline maths, frame sources, CLIP loading and a tiny trained CLIP."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rewardlab.vlm import GoalBaseline, goal_baseline, goal_baseline_reward, unit_rows


def _unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


# Projection maths ---------------------------------------------------------------------------------
def test_alpha_zero_is_cosine_similarity_up_to_an_affine_map():
    rng = np.random.default_rng(0)
    goals, baselines, images = rng.normal(size=(3, 6)), rng.normal(size=(2, 6)), rng.normal(size=(20, 6))
    spec = goal_baseline(goals, baselines, alpha=0.0)
    g = _unit(goals).mean(0)
    cosine = _unit(images) @ g
    # R = 1 − ½‖x̂ − g‖² = x̂·g + ½(1 − ‖g‖²): slope 1, offset fixed by ‖g‖.
    expected = cosine + 0.5 * (1 - g @ g)
    np.testing.assert_allclose(goal_baseline_reward(images, spec), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(spec.projection, np.eye(6))
    # One unit goal: exactly the cosine similarity.
    one = goal_baseline(goals[:1], None, alpha=0.0)
    np.testing.assert_allclose(goal_baseline_reward(images, one), _unit(images) @ _unit(goals[0]), atol=1e-6)


def test_alpha_one_counts_only_the_goal_baseline_direction():
    # g = e1, b = e2: d = (1, −1, 0)/…; moving x̂ orthogonally to d leaves R unchanged.
    spec = goal_baseline([[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]], alpha=1.0)
    d = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
    np.testing.assert_allclose(spec.projection, np.outer(d, d), atol=1e-12)
    np.testing.assert_allclose(spec.projection @ spec.projection, spec.projection, atol=1e-12)  # a projection
    same_along_d = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 5.0], [0.0, 0.0, 1.0]])  # x̂·d = 0 for each
    rewards = goal_baseline_reward(same_along_d, spec)
    # (x̂ − g)·d = −g·d = −1/√2 for each, so R = 1 − ½·½ = 0.75.
    np.testing.assert_allclose(rewards, [0.75, 0.75, 0.75], atol=1e-6)
    # Along d the reward is largest at the goal, smaller at the baseline: R(g) = 1, R(b) = 1 − ½·2 = 0.
    np.testing.assert_allclose(goal_baseline_reward([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], spec), [1.0, 0.0], atol=1e-6)


def test_intermediate_alpha_interpolates_the_projection():
    rng = np.random.default_rng(1)
    goals, baselines = rng.normal(size=(2, 4)), rng.normal(size=(3, 4))
    p0, p1 = goal_baseline(goals, baselines, 0.0).projection, goal_baseline(goals, baselines, 1.0).projection
    np.testing.assert_allclose(goal_baseline(goals, baselines, 0.3).projection, 0.3 * p1 + 0.7 * p0, atol=1e-12)


def test_several_prompts_are_averaged_after_normalising_each():
    spec = goal_baseline([[2.0, 0.0], [0.0, 5.0]], [[0.0, -1.0]], alpha=0.5)
    np.testing.assert_allclose(spec.goal, [0.5, 0.5])
    np.testing.assert_allclose(spec.baseline, [0.0, -1.0])


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_reward_is_invariant_to_the_embeddings_scale(alpha):
    rng = np.random.default_rng(2)
    goals, baselines, images = rng.normal(size=(2, 8)), rng.normal(size=(2, 8)), rng.normal(size=(10, 8))
    spec = goal_baseline(goals, baselines, alpha)
    scaled = goal_baseline(7.0 * goals, 0.01 * baselines, alpha)
    scales = rng.uniform(0.1, 100, (10, 1))
    np.testing.assert_allclose(goal_baseline_reward(images, spec), goal_baseline_reward(scales * images, scaled), 1e-5)


def test_projection_rejects_bad_input():
    with pytest.raises(ValueError, match=r"alpha: expected a number in \[0, 1\], got 1.5"):
        goal_baseline([[1.0, 0.0]], [[0.0, 1.0]], 1.5)
    with pytest.raises(ValueError, match="baseline_embeddings: expected baseline prompts"):
        goal_baseline([[1.0, 0.0]], None, 0.5)
    with pytest.raises(ValueError, match="baseline equals the goal"):
        goal_baseline([[1.0, 0.0]], [[3.0, 0.0]], 0.5)
    with pytest.raises(ValueError, match="expected width D=2"):
        goal_baseline([[1.0, 0.0]], [[0.0, 1.0, 0.0]], 0.5)
    with pytest.raises(ValueError, match="row 1 is zero"):
        unit_rows([[1.0], [0.0]])
    spec = goal_baseline([[1.0, 0.0]], None, 0.0)
    assert isinstance(spec, GoalBaseline)
    with pytest.raises(ValueError, match="image_embeddings: expected width D=2, got 3"):
        goal_baseline_reward(np.ones((1, 3)), spec)


# Frames, models, rewards (need the vlm extra) ----------------------------------------------------
transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
pytest.importorskip("pygame")

from rewardlab.vlm import (  # noqa: E402 (after the extras are known to be installed)
    TASK_PROMPTS,
    CLIPReward,
    ClipTrainConfig,
    ParallelFrames,
    StateFrames,
    VLMError,
    build_clip,
    build_tokenizer,
    caption_observations,
    frame_source,
    from_transformers,
    load_clip,
    read_metadata,
    sample_observations,
    save_clip,
    train_clip,
)

TINY = ClipTrainConfig(
    image_size=32, patch_size=8, width=32, layers=1, heads=2, projection_dim=16, num_frames=300, epochs=30
)


@pytest.fixture(scope="module")
def tiny_pendulum_clip():
    torch.set_num_threads(1)
    return train_clip("Pendulum-v1", TINY)


def test_checkpoint_round_trip(tmp_path):
    tokenizer = build_tokenizer(["the pole points up", "the pole points down"])
    model = build_clip(TINY, len(tokenizer.get_vocab()))
    embedder = from_transformers(model, tokenizer)
    path = save_clip(embedder, tmp_path / "clip", env_id="Pendulum-v1")
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"} <= {
        p.name for p in path.iterdir()
    }
    assert read_metadata(path)["goal"] == list(TASK_PROMPTS["Pendulum"][0])
    loaded = load_clip(path)
    assert loaded.image_size == 32
    frames = np.random.default_rng(0).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    np.testing.assert_allclose(loaded.embed_images(frames), embedder.embed_images(frames), atol=1e-5)
    texts = ["the pole points up", "the pole points down"]
    np.testing.assert_allclose(loaded.embed_texts(texts), embedder.embed_texts(texts), atol=1e-5)
    # Different captions give different text embeddings (the text tower pools at <eos>, not at padding).
    a, b = loaded.embed_texts(texts)
    assert not np.allclose(a, b)


def test_loading_names_what_is_wrong(tmp_path):
    with pytest.raises(VLMError, match="cannot load a CLIP checkpoint from the local folder"):
        load_clip(tmp_path / "missing")
    text_only = transformers.CLIPTextModel(
        transformers.CLIPTextConfig(hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2)
    )
    text_only.save_pretrained(tmp_path / "text")
    with pytest.raises(VLMError, match="has no image tower \\(model_type 'clip_text_model'\\)"):
        load_clip(tmp_path / "text")
    with pytest.raises(VLMError, match="has no image tower"):
        from_transformers(text_only, None, name="text-only")
    with pytest.raises(ImportError, match="open_clip"):
        load_clip("open_clip:ViT-B-32")


def test_frame_sources_and_their_errors():
    source = frame_source("CartPole-v1", 24)
    frames = source.render(np.zeros((2, 4), np.float32))
    assert frames.shape == (2, 24, 24, 3) and frames.dtype == np.uint8
    with pytest.raises(ValueError, match="obs: expected \\[N, 4\\] of CartPole-v1"):
        source.render(np.zeros((2, 3)))
    with pytest.raises(VLMError, match=r"env 'Blackjack-v1': (cannot render|no known map)"):
        StateFrames("Blackjack-v1", 16)
    with pytest.raises(VLMError, match="env 'Ant-v5': observations of shape"):
        StateFrames("Ant-v5", 16)


def test_mujoco_frames_follow_the_state():
    source = StateFrames("Hopper-v5", 32)
    obs = np.zeros((2, 11))
    obs[0, 0] = 1.25  # standing height
    obs[1, 0] = 0.2  # lying
    frames = source.render(obs)
    assert frames.shape == (2, 32, 32, 3)
    assert np.abs(frames[0].astype(int) - frames[1]).mean() > 1.0


def test_parallel_frames_equal_one_renderer_and_fail_clearly():
    obs = np.zeros((5, 11))
    obs[:, 0] = np.linspace(0.2, 1.3, 5)  # lying to standing
    obs[:, 2] = np.linspace(-0.5, 0.5, 5)
    pool = frame_source("Hopper-v5", 32, workers=2)
    assert isinstance(pool, ParallelFrames)
    try:
        np.testing.assert_array_equal(pool.render(obs), StateFrames("Hopper-v5", 32).render(obs))
        assert pool.render(obs[:1]).shape == (1, 32, 32, 3)  # fewer rows than workers
        with pytest.raises(ValueError, match=r"obs: expected \[N, 11\] of Hopper-v5"):
            pool.render(np.zeros((2, 4)))
        processes = list(pool._processes)
    finally:
        pool.close()
    assert all(process.poll() is not None for process in processes)
    with pytest.raises(VLMError, match="workers are closed"):
        pool.render(obs)
    with pytest.raises(VLMError, match="env 'Ant-v5': observations of shape"):
        ParallelFrames("Ant-v5", 16, workers=1)
    with pytest.raises(ValueError, match="workers: expected an integer >= 1"):
        frame_source("Hopper-v5", 32, workers=0)


def test_tiny_clip_reward_follows_the_captioned_state(tiny_pendulum_clip):
    embedder, result = tiny_pendulum_clip
    assert result["accuracy"] > 0.6, result
    obs = sample_observations("Pendulum-v1", 120, seed=123)  # held out: another seed
    reward = CLIPReward(embedder, frame_source("Pendulum-v1", TINY.image_size), *TASK_PROMPTS["Pendulum"], alpha=0.5)
    rewards = reward(obs, np.zeros((120, 1)), obs, np.zeros(120, bool))
    assert rewards.shape == (120,) and rewards.dtype == np.float32
    up = np.array([c == "the pole points up" for c in caption_observations("Pendulum-v1", obs)])
    # The reward ranks frames captioned "up" above the others, and tracks cos θ.
    assert rewards[up].mean() > rewards[~up].mean()
    assert np.corrcoef(rewards, obs[:, 0])[0, 1] > 0.5
    # A different α reuses the prompt embeddings; the reward is a RewardFn of next_obs alone.
    assert reward.with_alpha(1.0).alpha == 1.0
    np.testing.assert_allclose(reward(obs * 0, None, obs, np.zeros(120, bool)), rewards, atol=1e-6)


def test_clip_reward_rejects_bad_input(tiny_pendulum_clip):
    embedder, _ = tiny_pendulum_clip
    with pytest.raises(ValueError, match="goal: expected a non-empty prompt"):
        CLIPReward(embedder, None, "")
    reward = CLIPReward(embedder, None, "the pole points up")
    with pytest.raises(ValueError, match="has no frame source"):
        reward(np.zeros((1, 3)), None, np.zeros((1, 3)), np.zeros(1, bool))
    with pytest.raises(ValueError, match="frames: expected dtype uint8"):
        reward.from_frames(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="embedder: expected a ClipEmbedder"):
        CLIPReward(object(), None, "x")  # type: ignore[arg-type]


def test_metadata_is_json(tmp_path, tiny_pendulum_clip):
    embedder, result = tiny_pendulum_clip
    path = save_clip(embedder, tmp_path / "c", env_id="Pendulum-v1", accuracy=result["accuracy"])
    assert json.loads((path / "rewardlab_vlm.json").read_text())["env_id"] == "Pendulum-v1"


@pytest.mark.slow
def test_vlm_rm_experiment_runs_with_a_tiny_budget(tmp_path):
    from experiments.vlm_rm import Args, main

    args = Args(
        env_id="CartPole-v1",
        image_size=32,
        clip_frames=100,
        clip_epochs=2,
        alphas=(0.0, 1.0),
        rollout_episodes=1,
        total_timesteps=256,
        num_envs=2,
        epic_samples=16,
        eval_episodes=1,
        out_dir=tmp_path,
    )
    results = main(args)
    assert set(results["correlation"]["random"]) == {"0", "1"}
    assert np.isfinite(results["epic_distance"]) and 0 <= results["epic_distance"] <= 1
    assert (tmp_path / args.run_name / "clip" / "config.json").is_file()
    assert (tmp_path / args.run_name / "frames.png").is_file()


@pytest.mark.slow
def test_cli_trains_a_clip_then_ppo_on_its_reward(tmp_path):
    from typer.testing import CliRunner

    from rewardlab.cli import app

    runner = CliRunner()
    folder = tmp_path / "clip"
    result = runner.invoke(
        app,
        [
            "vlm",
            "train-clip",
            "--env",
            "CartPole-v1",
            "--out",
            str(folder),
            "--frames",
            "60",
            "--epochs",
            "1",
            "--image-size",
            "32",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "vlm",
            "train",
            "--env",
            "CartPole-v1",
            "--clip",
            str(folder),
            "--total-timesteps",
            "256",
            "--num-envs",
            "2",
            "--eval-episodes",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["goal"] == ["the pole is upright"]
    result = runner.invoke(app, ["vlm", "train", "--env", "CartPole-v1", "--clip", str(tmp_path / "none")])
    assert result.exit_code != 0 and "goal" in result.output
