"""A small CLIP trained contrastively on rendered frames and captions generated from the state.

No pretrained CLIP can be fetched on an offline machine, so the reward's model can be made
here: frames of an environment's states (:class:`StateFrames`), a caption of each state from a
rule on the observation, a word-level tokenizer built from the captions, and a ``transformers``
``CLIPModel`` of a few layers trained with the symmetric contrastive loss. It is saved in the
Hugging Face format, so :func:`load_clip` reads it like any other CLIP checkpoint.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rewardlab.vlm._clip import ClipEmbedder, from_transformers, require_transformers
from rewardlab.vlm._frames import StateFrames

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")  # ids 0..3; the text tower pools at the first <eos>
METADATA_FILE = "rewardlab_vlm.json"


def _cartpole(obs: np.ndarray) -> str:
    angle = float(obs[2])
    if abs(angle) < 0.06:
        return "the pole is upright"
    return "the pole is falling to the right" if angle > 0 else "the pole is falling to the left"


def _pendulum(obs: np.ndarray) -> str:
    angle = math.atan2(float(obs[1]), float(obs[0]))  # 0: up
    if abs(angle) < math.pi / 4:
        return "the pole points up"
    if abs(angle) > 3 * math.pi / 4:
        return "the pole points down"
    return "the pole points left" if angle > 0 else "the pole points right"


def _walker(obs: np.ndarray) -> str:
    height, angle = float(obs[0]), float(obs[1])  # torso height and pitch (qpos[1:3])
    return "the robot is standing" if height > 0.8 and abs(angle) < 0.4 else "the robot has fallen"


# Caption rules by environment name (the id before "-v"): what a state shows, in words.
CAPTIONERS: dict[str, Callable[[np.ndarray], str]] = {
    "CartPole": _cartpole,
    "Pendulum": _pendulum,
    "Hopper": _walker,
    "Walker2d": _walker,
}
# Goal and baseline prompts of each environment's task, in the captions' words.
TASK_PROMPTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "CartPole": (("the pole is upright",), ("the pole is falling to the left", "the pole is falling to the right")),
    "Pendulum": (("the pole points up",), ("the pole points left", "the pole points right", "the pole points down")),
    "Hopper": (("the robot is standing",), ("the robot has fallen",)),
    "Walker2d": (("the robot is standing",), ("the robot has fallen",)),
}


def env_name(env_id: str) -> str:
    """The environment's name without its version: ``"CartPole-v1"`` → ``"CartPole"``."""
    return env_id.split("/")[-1].split("-v")[0]


def captioner(env_id: str) -> Callable[[np.ndarray], str]:
    """The caption rule of an env.

    Raises:
        ValueError: no rule for the env (names the ones there are).
    """
    name = env_name(env_id)
    if name not in CAPTIONERS:
        raise ValueError(f"env_id: expected one of {sorted(CAPTIONERS)} (envs with captions), got {env_id!r}")
    return CAPTIONERS[name]


def caption_observations(env_id: str, obs: Any) -> list[str]:
    """The caption of each observation ``[N, *obs_shape]`` (the rules of ``CAPTIONERS``)."""
    rule = captioner(env_id)
    return [rule(row) for row in np.asarray(obs)]


def sample_observations(env_id: str, n: int, seed: int = 0) -> np.ndarray:
    """N observations covering the states the captions name, float32 ``[N, *obs_shape]``.

    CartPole and Pendulum: states drawn uniformly (cart position in [−2, 2], pole angle in
    [−0.3, 0.3] rad; pendulum angle in [−π, π]), velocities in [−1, 1]. MuJoCo walkers: the
    states of uniformly random actions with termination off, so that the robot stands, falls
    and lies.

    Raises:
        ValueError: an env without a rule here, or ``n < 1``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected an integer >= 1, got {n!r}")
    rng = np.random.default_rng(seed)
    name = env_name(env_id)
    if name == "CartPole":
        low, high = np.array([-2.0, -1.0, -0.3, -1.0]), np.array([2.0, 1.0, 0.3, 1.0])
        return rng.uniform(low, high, (n, 4)).astype(np.float32)
    if name == "Pendulum":
        angle = rng.uniform(-np.pi, np.pi, n)
        return np.stack([np.cos(angle), np.sin(angle), rng.uniform(-1, 1, n)], 1).astype(np.float32)
    if name in ("Hopper", "Walker2d"):
        env = gym.make(env_id, terminate_when_unhealthy=False)
        env.action_space.seed(seed)
        out: list[np.ndarray] = []
        obs, _ = env.reset(seed=seed)
        episode_steps = 0
        while len(out) < n:
            obs, _, _, _, _ = env.step(env.action_space.sample())
            out.append(obs)
            episode_steps += 1
            if episode_steps >= 120:  # long enough to fall and lie; short enough to see standing often
                obs, _ = env.reset()
                episode_steps = 0
        env.close()
        return np.asarray(out, np.float32)
    raise ValueError(f"env_id: expected one of {sorted(CAPTIONERS)} (envs with captions), got {env_id!r}")


@dataclass(frozen=True)
class ClipTrainConfig:
    """A small CLIP and its contrastive training.

    Attributes:
        image_size: frame side S in pixels.
        patch_size: ViT patch side (divides S).
        width: hidden width of both towers.
        layers: transformer layers of each tower.
        heads: attention heads (divide ``width``).
        projection_dim: D, the width of the shared embedding space.
        num_frames: frames rendered for training (10 % more are held out).
        epochs: passes over the frames.
        batch_size: frames per step.
        learning_rate: AdamW step size.
        seed: seed of the states, the initial weights and the batches.
    """

    image_size: int = 64
    patch_size: int = 8
    width: int = 64
    layers: int = 2
    heads: int = 2
    projection_dim: int = 64
    num_frames: int = 2000
    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("image_size", "patch_size", "width", "layers", "heads", "projection_dim", "num_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if self.image_size % self.patch_size:
            raise ValueError(f"patch_size: expected a divisor of image_size={self.image_size}, got {self.patch_size}")
        if self.width % self.heads:
            raise ValueError(f"heads: expected a divisor of width={self.width}, got {self.heads}")
        if self.epochs < 0 or self.batch_size < 2:
            raise ValueError(f"epochs, batch_size: expected >= 0 and >= 2, got {self.epochs}, {self.batch_size}")


def build_tokenizer(captions: list[str], max_length: int = 16) -> Any:
    """A word-level tokenizer of the captions' words (lower-cased), ``<bos> words <eos>``, as a ``PreTrainedTokenizerFast``."""
    transformers = require_transformers()
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    words = sorted({word for caption in captions for word in caption.lower().split()})
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])]
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


def build_clip(config: ClipTrainConfig, vocab_size: int, max_length: int = 16) -> Any:
    """A randomly initialised ``transformers`` ``CLIPModel`` of the config's size."""
    transformers = require_transformers()
    torch.manual_seed(config.seed)
    tower = dict(
        hidden_size=config.width,
        intermediate_size=4 * config.width,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
    )
    clip_config = transformers.CLIPConfig(
        text_config=dict(
            vocab_size=vocab_size,
            max_position_embeddings=max_length,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
            **tower,
        ),
        vision_config=dict(image_size=config.image_size, patch_size=config.patch_size, **tower),
        projection_dim=config.projection_dim,
    )
    return transformers.CLIPModel(clip_config)


class ClipTrainResult(dict):
    """Training figures: ``loss`` per epoch, held-out ``accuracy`` (frame → its caption) and ``captions``."""


def contrastive_loss(
    image: torch.Tensor, text: torch.Tensor, caption_ids: torch.Tensor, logit_scale: torch.Tensor
) -> Any:
    """Symmetric InfoNCE between B frames and the K distinct captions.

    With unit embeddings and s = exp(logit_scale), logits L = s·Img Txtᵀ ``[B, K]``. Each frame's
    target is its own caption (cross-entropy over the K captions); each caption present in the
    batch targets, uniformly, the frames it describes (cross-entropy over the B frames). A
    caption shared by many frames is thus never counted as their negative.
    Loss = ½(CE_frames→captions + CE_captions→frames).

    Args:
        image: ``[B, D]`` image embeddings.
        text: ``[K, D]`` embeddings of the distinct captions.
        caption_ids: ``[B]`` int index of each frame's caption.
        logit_scale: log s (learned).
    """
    image = image / image.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    logits = logit_scale.exp().clamp(max=100) * image @ text.T  # [B, K]
    loss_image = torch.nn.functional.cross_entropy(logits, caption_ids)
    mask = torch.nn.functional.one_hot(caption_ids, text.shape[0]).T.float()  # [K, B]
    present = mask.sum(dim=1) > 0
    targets = mask[present] / mask[present].sum(dim=1, keepdim=True)
    loss_text = -(targets * logits.T[present].log_softmax(dim=1)).sum(dim=1).mean()
    return 0.5 * (loss_image + loss_text)


def train_clip(
    env_id: str,
    config: ClipTrainConfig = ClipTrainConfig(),
    *,
    frames: Any = None,
    captions: list[str] | None = None,
) -> tuple[ClipEmbedder, ClipTrainResult]:
    """Train a small CLIP on frames of ``env_id`` and the captions of their states.

    Frames come from :func:`sample_observations` rendered by :class:`StateFrames` at
    ``image_size``, unless given (with their ``captions``); the pixels are normalised with the
    frames' channel mean and std (saved with the model). 10 % of them are held out; the
    held-out ``accuracy`` is the fraction of frames whose nearest caption (among the distinct
    captions) is their own.

    Returns:
        (the :class:`ClipEmbedder` of the trained model, its :class:`ClipTrainResult`).

    Raises:
        ValueError: an env without captions, or frames without captions of the same length.
    """
    if frames is None:
        obs = sample_observations(env_id, int(config.num_frames * 1.1) + 1, config.seed)
        captions = caption_observations(env_id, obs)
        source = StateFrames(env_id, config.image_size)
        frames = source.render(obs)
        source.close()
    frames = np.asarray(frames)
    if captions is None or len(captions) != len(frames):
        raise ValueError(f"captions: expected one caption per frame ({len(frames)}), got {captions and len(captions)}")
    distinct = sorted(set(captions))
    tokenizer = build_tokenizer(distinct)
    model = build_clip(config, len(tokenizer.get_vocab()))
    embedder = from_transformers(model, tokenizer, name=f"small CLIP of {env_id}")
    # Normalise with the frames' own channel statistics: rendered scenes are mostly background, and
    # with CLIP's photo statistics every frame would embed to nearly the same vector at initialisation.
    channels = frames.reshape(-1, 3).astype(np.float64) / 255.0
    embedder.mean = torch.tensor(channels.mean(0), dtype=torch.float32).view(1, 3, 1, 1)
    embedder.std = torch.tensor(np.maximum(channels.std(0), 1e-3), dtype=torch.float32).view(1, 3, 1, 1)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(frames))
    held = max(1, len(frames) // 11)
    test, train = order[:held], order[held:]
    caption_ids = np.array([distinct.index(c) for c in captions])
    tokens = tokenizer(distinct, padding=True, return_tensors="pt")
    pixels = embedder.pixels(frames)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    losses = []
    model.train()
    for _ in range(config.epochs):
        rng.shuffle(train)
        total = 0.0
        batches = 0
        for start in range(0, len(train) - 1, config.batch_size):
            batch = train[start : start + config.batch_size]
            if len(batch) < 2:
                continue
            ids = torch.as_tensor(caption_ids[batch])
            image = model.get_image_features(pixel_values=pixels[batch])
            text = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
            image = image if isinstance(image, torch.Tensor) else image.pooler_output
            text = text if isinstance(text, torch.Tensor) else text.pooler_output
            loss = contrastive_loss(image, text, ids, model.logit_scale)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        losses.append(total / max(batches, 1))
    model.eval()
    image_emb = embedder.embed_images(frames[test])
    text_emb = embedder.embed_texts(distinct)
    image_emb /= np.linalg.norm(image_emb, axis=1, keepdims=True)
    text_emb /= np.linalg.norm(text_emb, axis=1, keepdims=True)
    accuracy = float(np.mean(np.argmax(image_emb @ text_emb.T, axis=1) == caption_ids[test]))
    result = ClipTrainResult(loss=losses, accuracy=accuracy, captions=distinct, held_out=int(held))
    return embedder, result


def save_clip(embedder: ClipEmbedder, folder: str | os.PathLike, *, env_id: str | None = None, **metadata: Any) -> Path:
    """Save a ``transformers`` CLIP embedder in the Hugging Face format (``load_clip`` reads it back).

    Writes the model (``save_pretrained``: ``config.json`` and safetensors weights), its
    tokenizer, ``preprocessor_config.json`` (input size, mean, std) and ``rewardlab_vlm.json``
    (the env, its goal and baseline prompts, and ``metadata``).

    Raises:
        ValueError: the embedder has no ``transformers`` model to save.
    """
    model = embedder.model
    if model is None or not hasattr(model, "save_pretrained"):
        raise ValueError(f"embedder: expected one over a transformers CLIPModel, got model {type(model).__name__}")
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer = getattr(embedder, "tokenizer", None)
    if tokenizer is None:
        raise ValueError("embedder: has no tokenizer to save")
    tokenizer.save_pretrained(path)
    size = embedder.image_size
    (path / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "CLIPImageProcessor",
                "size": {"shortest_edge": size},
                "crop_size": {"height": size, "width": size},
                "image_mean": embedder.mean.flatten().tolist(),
                "image_std": embedder.std.flatten().tolist(),
            },
            indent=1,
        )
    )
    info: dict[str, Any] = dict(metadata)
    if env_id is not None:
        name = env_name(env_id)
        goal, baseline = TASK_PROMPTS.get(name, ((), ()))
        info.update(env_id=env_id, goal=list(goal), baseline=list(baseline))
    (path / METADATA_FILE).write_text(json.dumps(info, indent=1, default=str))
    return path


def read_metadata(folder: str | os.PathLike) -> dict[str, Any]:
    """``rewardlab_vlm.json`` of a checkpoint saved by :func:`save_clip` (empty when absent)."""
    path = Path(folder) / METADATA_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
