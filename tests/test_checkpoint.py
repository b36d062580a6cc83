"""Reward-model checkpoints: round trip, atomic writes, and every corruption case."""

from __future__ import annotations

import hashlib
import json
import os
import struct

import gymnasium as gym
import jax
import numpy as np
import pytest

import rewardlab
from rewardlab.rewards import (
    CheckpointError,
    RewardModel,
    RewardNetConfig,
    as_reward_fn,
    load_reward_model,
    save_reward_model,
)
from rewardlab.rewards._checkpoint import MAGIC

OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (5,), np.float64)
ACT_SPACE = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
PREFIX = struct.Struct("<8sIQQ")


@pytest.fixture(scope="module")
def trained():
    config = RewardNetConfig(
        inputs=("obs", "act", "next_obs"), hidden_sizes=(8, 8), ensemble_size=2, potential_shaping=True, discount=0.9
    )
    model = RewardModel(config, OBS_SPACE, ACT_SPACE)
    rng = np.random.default_rng(0)
    params = model.update_normalizer(model.init(jax.random.key(0)), rng.normal(3.0, 2.0, (40, 5)))
    return model, params


@pytest.fixture
def saved(tmp_path, trained):
    model, params = trained
    path = tmp_path / "reward.rlab"
    save_reward_model(path, model, params)
    return path


def data(n: int = 6):
    rng = np.random.default_rng(1)
    return (
        rng.normal(size=(n, 5)),
        rng.uniform(-1, 1, (n, 2)).astype(np.float32),
        rng.normal(size=(n, 5)),
        rng.uniform(size=n) < 0.3,
    )


def split(raw: bytes) -> tuple[int, dict, bytes]:
    _, version, header_length, payload_length = PREFIX.unpack_from(raw)
    header = json.loads(raw[PREFIX.size : PREFIX.size + header_length])
    payload = raw[PREFIX.size + header_length : PREFIX.size + header_length + payload_length]
    return version, header, payload


def assemble(version: int, header: dict, payload: bytes) -> bytes:
    header_bytes = json.dumps(header).encode()
    body = PREFIX.pack(MAGIC, version, len(header_bytes), len(payload)) + header_bytes + payload
    return body + hashlib.sha256(body).digest()


def test_round_trip_gives_identical_outputs(saved, trained):
    model, params = trained
    loaded_model, loaded_params = load_reward_model(saved, observation_space=OBS_SPACE, action_space=ACT_SPACE)
    assert loaded_model.config == model.config
    assert loaded_model.observation_space == OBS_SPACE and loaded_model.action_space == ACT_SPACE
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded_params), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.apply(params, *data()), loaded_model.apply(loaded_params, *data()))
    # Loaded params have the model's pytree structure: a live reward fn accepts them.
    fn = as_reward_fn(model, params)
    fn.set_params(loaded_params)
    np.testing.assert_array_equal(fn(*data()), as_reward_fn(model, params)(*data()))


def test_round_trip_dict_space_with_image(tmp_path):
    space = gym.spaces.Dict({"img": gym.spaces.Box(0, 255, (8, 8, 1), np.uint8), "mode": gym.spaces.Discrete(3)})
    config = RewardNetConfig(hidden_sizes=(4,), cnn_channels=(2,), cnn_kernel_sizes=(3,), cnn_strides=(2,))
    model = RewardModel(config, space, gym.spaces.MultiDiscrete([2, 3]))
    params = model.init(3)
    path = save_reward_model(tmp_path / "sub" / "dict.rlab", model, params)
    loaded_model, loaded_params = load_reward_model(path)
    assert list(loaded_model.observation_space.spaces) == ["img", "mode"]
    obs = {"img": np.full((2, 8, 8, 1), 200, np.uint8), "mode": np.array([0, 2])}
    acts = np.array([[1, 2], [0, 0]])
    np.testing.assert_array_equal(
        model.apply(params, obs, acts, None, None), loaded_model.apply(loaded_params, obs, acts, None, None)
    )


def test_header_records_versions_and_no_temp_files_remain(saved, trained):
    raw = saved.read_bytes()
    assert raw.startswith(MAGIC)
    version, header, _ = split(raw)
    assert version == header["format_version"] == 1
    assert header["library_version"] == rewardlab.__version__
    assert header["config"] == trained[0].config.to_dict()
    assert os.listdir(saved.parent) == [saved.name]


def test_overwrite_is_atomic(saved, trained, monkeypatch):
    model, _params = trained
    original = saved.read_bytes()

    def failing_replace(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        save_reward_model(saved, model, model.init(1))
    monkeypatch.undo()
    assert saved.read_bytes() == original  # the old checkpoint is untouched
    assert os.listdir(saved.parent) == [saved.name]  # the temporary file was removed
    save_reward_model(saved, model, model.init(1))
    assert saved.read_bytes() != original


def test_checkpoint_mode_follows_the_umask_and_stale_temp_files_go(tmp_path, trained):
    model, params = trained
    path = tmp_path / "reward.rlab"
    leftover = tmp_path / ".reward.rlab.0a1b2c3d.tmp"  # a save killed mid-write left it
    leftover.write_bytes(b"RLABRWD\x00 half")
    os.utime(leftover, (1.0, 1.0))
    saved_mask = os.umask(0o022)
    try:
        save_reward_model(path, model, params)
        assert path.stat().st_mode & 0o777 == 0o644  # was 0o600 (tempfile.mkstemp) whatever the umask
        os.umask(0o027)
        save_reward_model(path, model, params)
        assert path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(saved_mask)
    assert os.listdir(tmp_path) == [path.name]


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_reward_model(tmp_path / "nope.rlab")
    assert issubclass(CheckpointError, ValueError)


@pytest.mark.parametrize("keep", [4, 20, -40, -1])
def test_truncated_file(saved, keep):
    raw = saved.read_bytes()
    saved.write_bytes(raw[:keep])
    with pytest.raises(CheckpointError, match="truncated"):
        load_reward_model(saved)


def test_bad_magic(saved):
    raw = saved.read_bytes()
    saved.write_bytes(b"PK\x03\x04" + raw[4:])
    with pytest.raises(CheckpointError, match="bad magic"):
        load_reward_model(saved)


def test_checksum_mismatch(saved):
    raw = bytearray(saved.read_bytes())
    raw[-100] ^= 0xFF  # a bit flip inside the payload
    saved.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_reward_model(saved)


def test_unsupported_format_version(saved):
    _, header, payload = split(saved.read_bytes())
    saved.write_bytes(assemble(99, dict(header, format_version=99), payload))
    with pytest.raises(CheckpointError, match="unsupported format version 99"):
        load_reward_model(saved)


def test_space_mismatch(saved):
    with pytest.raises(CheckpointError, match="observation_space mismatch"):
        load_reward_model(saved, observation_space=gym.spaces.Box(-np.inf, np.inf, (6,), np.float64))
    with pytest.raises(CheckpointError, match="action_space mismatch"):
        load_reward_model(saved, action_space=gym.spaces.Box(-2.0, 2.0, (2,), np.float32))


def test_params_structure_mismatch(saved):
    version, header, payload = split(saved.read_bytes())
    wider = dict(header, config=dict(header["config"], hidden_sizes=[16, 8]))  # the payload holds 8-wide layers
    saved.write_bytes(assemble(version, wider, payload))
    with pytest.raises(
        CheckpointError,
        match=r"structure mismatch at .*'layers'\]\[0\]\['(bias|kernel)'\].value: expected shape \(2, 16\)",
    ):
        load_reward_model(saved)
    no_shaping = dict(header, config=dict(header["config"], potential_shaping=False))
    saved.write_bytes(assemble(version, no_shaping, payload))
    with pytest.raises(CheckpointError, match=r"structure mismatch: missing .*unexpected .*'h'"):
        load_reward_model(saved)


def test_malformed_header(saved):
    version, header, payload = split(saved.read_bytes())
    saved.write_bytes(assemble(version, dict(header, config={"hidden": 3}), payload))
    with pytest.raises(CheckpointError, match="malformed header"):
        load_reward_model(saved)


def test_save_rejects_foreign_params(tmp_path, trained):
    model, _ = trained
    other = RewardModel(RewardNetConfig(hidden_sizes=(3,)), OBS_SPACE, ACT_SPACE)
    with pytest.raises(ValueError, match="params: parameter structure mismatch"):
        save_reward_model(tmp_path / "x.rlab", model, other.init(0))
    assert not (tmp_path / "x.rlab").exists()
