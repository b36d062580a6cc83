"""A bonus's state on disk: each bonus continues from its saved state, and a stopped training run resumes with it.

The end-to-end checks run the real study (``experiments.nethack_intrinsic``) on MiniHack: a run
stops (ends, or is killed with SIGKILL mid-training), the run resumes from its folder, and the
bonus state it continues from equals the one saved beside the checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

from rewardlab.intrinsic import (
    BonusStateError,
    E3BBonus,
    EpisodicCountBonus,
    GlobalCountBonus,
    LabelStore,
    MessageRewards,
    MotifBonus,
    ONIBonus,
    ProductBonus,
    RNDBonus,
    load_bonus_state,
    read_bonus_state,
    save_bonus_state,
)

F, T = False, True
ROOT = Path(__file__).resolve().parent.parent


def assert_same_state(a: Any, b: Any) -> None:
    """Two state dicts with the same structure and equal leaves (arrays, numbers, strings, bytes)."""
    leaves_a, tree_a = jax.tree.flatten(a, is_leaf=lambda x: x is None)
    leaves_b, tree_b = jax.tree.flatten(b, is_leaf=lambda x: x is None)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if isinstance(x, (str, bytes)) or x is None:
            assert x == y
        else:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _obs(rng: np.random.Generator, n: int = 3) -> dict[str, np.ndarray]:
    return {
        "glyphs": rng.integers(0, 3, (n, 4)).astype(np.int16),
        "blstats": rng.normal(size=(n, 5)).astype(np.float32),
    }


BONUSES = {
    "counts": lambda: ProductBonus(GlobalCountBonus(obs_keys=("glyphs",)), EpisodicCountBonus(obs_keys=("glyphs",))),
    "rnd": lambda: RNDBonus(update_every=4),
    "e3b": lambda: E3BBonus(5, update_every=4),
}


@pytest.mark.parametrize("kind", sorted(BONUSES))
def test_a_restored_bonus_has_the_saved_state_and_scores_as_the_original(kind: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    bonus = BONUSES[kind]()
    for t in range(10):  # two training rounds of RND and E3B and a partly filled buffer
        bonus(_obs(rng), rng.integers(0, 5, 3), _obs(rng), np.array([F, t == 5, F]))
    save_bonus_state(tmp_path / "state.rlab", bonus, env_steps=30)
    restored = BONUSES[kind]()
    assert load_bonus_state(tmp_path / "state.rlab", restored) == 30
    assert_same_state(restored.state_dict(), bonus.state_dict())
    bonus.load_state_dict(bonus.state_dict())  # episodic state starts afresh in both
    obs, acts, next_obs = _obs(rng), rng.integers(0, 5, 3), _obs(rng)
    np.testing.assert_array_equal(
        restored(obs, acts, next_obs, np.array([F, F, F])), bonus(obs, acts, next_obs, np.array([F, F, F]))
    )


def test_counts_table_is_kept_and_episodic_counts_start_afresh() -> None:
    bonus = ProductBonus(GlobalCountBonus(), EpisodicCountBonus())
    s = np.array([[0]])
    bonus(s, None, s, np.array([F]))
    restored = ProductBonus(GlobalCountBonus(), EpisodicCountBonus())
    restored.load_state_dict(bonus.state_dict())
    assert restored.global_bonus.counts == {s.tobytes(): 1}
    np.testing.assert_allclose(restored(s, None, s, np.array([F])), [2**-0.5])  # global 1/√2, episodic 1 (new episode)


def test_motif_and_oni_keep_their_reward_model_and_normalisation(tmp_path: Path) -> None:
    motif = MotifBonus(MessageRewards({"a": 0, "b": 1, "c": 2}, np.array([1.0, -0.5, 0.2], np.float32)))
    save_bonus_state(tmp_path / "motif.rlab", motif, env_steps=7)
    other = MotifBonus(MessageRewards({"x": 0}, np.array([3.0], np.float32)))
    load_bonus_state(tmp_path / "motif.rlab", other)
    assert_same_state(other.state_dict(), motif.state_dict())
    assert other.normalised("a") == motif.normalised("a") > 0

    store = LabelStore(tmp_path / "labels.sqlite")
    store.put(
        [("You find a hidden passage.", 1.0, ""), ("It's a wall.", 0.0, ""), ("You see here 5 gold pieces.", 1.0, "")]
    )
    with ONIBonus(lambda ms: [(None, "")] * len(ms), store, reward_model="classification") as oni:
        oni.scored, oni.unlabelled, oni.calls = 9, 4, 5
        save_bonus_state(tmp_path / "oni.rlab", oni, env_steps=20)
        saved = oni.state_dict()
    with ONIBonus(lambda ms: [(None, "")] * len(ms), store, reward_model="classification") as resumed:
        load_bonus_state(tmp_path / "oni.rlab", resumed)
        assert_same_state(resumed.state_dict(), saved)
        assert resumed.stats()["label_hit_rate"] == 1 - 4 / 9
    store.put([("You kill the newt!", 1.0, "")])  # labelled after the save: the model is refitted on all labels
    with ONIBonus(lambda ms: [(None, "")] * len(ms), store, reward_model="classification") as resumed:
        load_bonus_state(tmp_path / "oni.rlab", resumed)
        assert resumed.scorer.num_labels == 4 and resumed.refits == saved["refits"] + 1
    with ONIBonus(lambda ms: [(None, "")] * len(ms), store) as hashing, pytest.raises(ValueError, match="'hashing'"):
        load_bonus_state(tmp_path / "oni.rlab", hashing)


def test_a_file_of_another_bonus_or_not_a_state_is_refused(tmp_path: Path) -> None:
    save_bonus_state(tmp_path / "rnd.rlab", RNDBonus(), env_steps=0)
    with pytest.raises(BonusStateError, match=r"RNDBonus.*E3BBonus"):
        load_bonus_state(tmp_path / "rnd.rlab", E3BBonus(3))
    (tmp_path / "junk.rlab").write_bytes(b"PK\x03\x04 not a state")
    with pytest.raises(BonusStateError, match="not a bonus-state file"):
        read_bonus_state(tmp_path / "junk.rlab")
    (tmp_path / "cut.rlab").write_bytes((tmp_path / "rnd.rlab").read_bytes()[:20])
    with pytest.raises(BonusStateError, match="corrupted"):
        read_bonus_state(tmp_path / "cut.rlab")


# End to end: a real run stops and resumes ----------------------------------------------------------
pytest.importorskip("minihack")


def _args(run_dir: Path, intrinsic: str, total_timesteps: int) -> Any:
    from experiments.nethack_intrinsic import Args

    return Args(
        env_id="MiniHack-Room-5x5-v0",
        intrinsic=intrinsic,  # type: ignore[arg-type]
        total_timesteps=total_timesteps,
        num_envs=2,
        n_steps=64,
        checkpoint_every=128,
        run_dir=str(run_dir),
    )


@pytest.mark.parametrize("intrinsic", ["counts", "e3b"])  # RND: the killed run below
def test_a_resumed_run_continues_from_the_saved_bonus_state(intrinsic: str, tmp_path: Path) -> None:
    from experiments.nethack_intrinsic import main

    main(_args(tmp_path, intrinsic, 128))
    saved = read_bonus_state(tmp_path / "bonus_state.rlab")
    assert saved["env_steps"] == 128 and saved["bonus"] == (
        "ProductBonus" if intrinsic == "counts" else type(BONUSES[intrinsic]()).__name__
    )
    if intrinsic == "counts":
        assert int(np.sum(saved["state"]["global"]["counts"])) == 128  # one visit counted per env step
    main(_args(tmp_path, intrinsic, 128))  # resumes at 128 steps: nothing to train, the bonus saved again
    assert_same_state(read_bonus_state(tmp_path / "bonus_state.rlab")["state"], saved["state"])
    main(_args(tmp_path, intrinsic, 256))
    after = read_bonus_state(tmp_path / "bonus_state.rlab")
    assert after["env_steps"] == 256
    if intrinsic == "counts":
        assert int(np.sum(after["state"]["global"]["counts"])) == 256  # continued, not restarted
    else:
        assert after["state"]["num_calls"] == 128  # calls of 2 envs: 64 before the stop, 64 after


@pytest.mark.slow
def test_a_killed_run_resumes_with_the_bonus_state_of_its_last_checkpoint(tmp_path: Path) -> None:
    from experiments.nethack_intrinsic import main

    run_dir = tmp_path / "rnd"
    env = dict(os.environ, MUJOCO_GL="egl", JAX_PLATFORMS="cpu")
    command = [
        sys.executable,
        "-c",
        "from rewardlab.cli import app; app()",
        "train",
        "--intrinsic",
        "rnd",
        "--num-envs",
        "2",
        "--n-steps",
        "64",
    ]
    command += ["--checkpoint-every", "128", "--total-timesteps", "100000", "--out", str(tmp_path), "--name", "rnd"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        state = run_dir / "bonus_state.rlab"
        while not (state.exists() and read_bonus_state(state)["env_steps"] >= 384):
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    saved = read_bonus_state(run_dir / "bonus_state.rlab")
    steps = saved["env_steps"]
    main(_args(run_dir, "rnd", steps))  # resume at the checkpoint: nothing to train, the restored bonus saved again
    resumed = read_bonus_state(run_dir / "bonus_state.rlab")
    assert_same_state(resumed["state"], saved["state"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] >= steps


def test_a_run_saved_without_a_bonus_state_resumes_with_a_fresh_bonus(tmp_path: Path, caplog) -> None:
    from experiments.nethack_intrinsic import main

    main(_args(tmp_path, "counts", 128))
    (tmp_path / "bonus_state.rlab").unlink()
    with caplog.at_level("WARNING", logger="rewardlab.experiments"):
        main(_args(tmp_path, "counts", 256))
    assert "starts afresh" in caplog.text
    assert int(np.sum(read_bonus_state(tmp_path / "bonus_state.rlab")["state"]["global"]["counts"])) == 128
