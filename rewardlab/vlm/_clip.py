"""CLIP image and text towers behind one small interface: Hugging Face ``CLIPModel`` or open_clip."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from rewardlab.vlm._errors import VLMError

# The image normalisation OpenAI's CLIP was trained with (mean and std of its RGB pixels in [0, 1]).
CLIP_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
OPEN_CLIP_PREFIX = "open_clip:"


def require_transformers() -> Any:
    """The ``transformers`` module, or an ImportError that says which extra to install."""
    try:
        import transformers
    except ImportError:  # the optional dependency of the vlm extra
        raise ImportError(
            "rewardlab.vlm needs `transformers` for CLIP models: pip install -c constraints.txt 'rewardlab[vlm]'"
        ) from None
    return transformers


def _features(output: Any) -> torch.Tensor:
    """The projected embedding of a ``get_*_features`` call (a tensor, or a pooled output in transformers 5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class ClipEmbedder:
    """Unit-free CLIP embeddings of frames and texts, from any CLIP with an image and a text tower.

    Frames ``uint8 [N, H, W, 3]`` are scaled to [0, 1], resized (bilinear) to the model's input
    size when they are not already that size, normalised with the model's mean and std, and
    embedded in one batch (``batch_size`` frames at a time); texts go through the model's
    tokenizer. Embeddings come back as float32 NumPy arrays, not normalised (the reward
    normalises them).

    Args:
        image_fn: ``pixels [N, 3, S, S] float32 -> [N, D]`` (the image tower and projection).
        text_fn: ``list[str] -> [N, D]`` (tokenizer, text tower and projection).
        image_size: S, the model's input size.
        mean: per-channel mean of the normalisation.
        std: per-channel std of the normalisation.
        name: where the model came from (error messages, ``repr``).
        model: the underlying torch module (kept for ``save``, device moves and benchmarks).
        tokenizer: the text tokenizer (kept for ``save``).
        batch_size: frames per forward pass.
    """

    def __init__(
        self,
        image_fn: Callable[[torch.Tensor], torch.Tensor],
        text_fn: Callable[[list[str]], torch.Tensor],
        image_size: int,
        *,
        mean: Sequence[float] = CLIP_IMAGE_MEAN,
        std: Sequence[float] = CLIP_IMAGE_STD,
        name: str = "clip",
        model: Any = None,
        tokenizer: Any = None,
        batch_size: int = 256,
    ) -> None:
        if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
            raise ValueError(f"image_size: expected a positive integer, got {image_size!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
        self.image_fn = image_fn
        self.text_fn = text_fn
        self.image_size = int(image_size)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = int(batch_size)

    def __repr__(self) -> str:
        return f"ClipEmbedder({self.name!r}, image_size={self.image_size})"

    def pixels(self, frames: Any) -> torch.Tensor:
        """The model's input ``[N, 3, S, S]`` float32 from frames ``uint8 [N, H, W, 3]``.

        Raises:
            ValueError: frames are not ``[N, H, W, 3]`` uint8.
        """
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
            raise ValueError(f"frames: expected RGB frames uint8 [N, H, W, 3] with N >= 1, got shape {frames.shape}")
        if frames.dtype != np.uint8:
            raise ValueError(f"frames: expected dtype uint8 (RGB pixels 0..255), got {frames.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = functional.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    def embed_images(self, frames: Any) -> np.ndarray:
        """Image embeddings ``[N, D]`` float32 of frames ``uint8 [N, H, W, 3]`` (one forward pass per ``batch_size``)."""
        n = int(np.shape(frames)[0]) if np.ndim(frames) else 0
        out = []
        with torch.inference_mode():
            for start in range(0, max(n, 1), self.batch_size):
                chunk = self.pixels(np.asarray(frames)[start : start + self.batch_size])
                out.append(self.image_fn(chunk).float())
        return torch.cat(out).numpy()

    def embed_texts(self, texts: str | Sequence[str]) -> np.ndarray:
        """Text embeddings ``[T, D]`` float32 of one or several prompts.

        Raises:
            ValueError: no prompt, or a prompt that is not a non-empty string.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts or not all(isinstance(text, str) and text.strip() for text in texts):
            raise ValueError(f"texts: expected one or more non-empty strings, got {texts!r}")
        with torch.inference_mode():
            return self.text_fn(texts).float().numpy()


def from_transformers(model: Any, tokenizer: Any, *, name: str = "transformers CLIPModel") -> ClipEmbedder:
    """A :class:`ClipEmbedder` over a ``transformers`` ``CLIPModel`` and its tokenizer.

    Raises:
        VLMError: ``model`` has no image tower (``get_image_features`` and a ``vision_config``),
            naming the model.
    """
    config: Any = getattr(model, "config", None)
    vision = getattr(config, "vision_config", None)
    if not callable(getattr(model, "get_image_features", None)) or vision is None:
        kind = getattr(config, "model_type", type(model).__name__)
        raise VLMError(
            f"model {name!r}: has no image tower (a {kind}); expected a CLIP model with an image and a text tower"
        )
    if not callable(getattr(model, "get_text_features", None)):
        raise VLMError(f"model {name!r}: has no text tower; expected a CLIP model with an image and a text tower")
    model.eval()
    max_length = int(getattr(config.text_config, "max_position_embeddings", 77))

    def image_fn(pixels: torch.Tensor) -> torch.Tensor:
        return _features(model.get_image_features(pixel_values=pixels))

    def text_fn(texts: list[str]) -> torch.Tensor:
        tokens = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return _features(
            model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens.get("attention_mask"))
        )

    return ClipEmbedder(image_fn, text_fn, int(vision.image_size), name=name, model=model, tokenizer=tokenizer)


def _processor_stats(folder: Path) -> tuple[Sequence[float], Sequence[float]]:
    """Image mean and std from a checkpoint's ``preprocessor_config.json`` (CLIP's own when absent)."""
    path = folder / "preprocessor_config.json"
    if path.is_file():
        config = json.loads(path.read_text())
        return config.get("image_mean", CLIP_IMAGE_MEAN), config.get("image_std", CLIP_IMAGE_STD)
    return CLIP_IMAGE_MEAN, CLIP_IMAGE_STD


def load_clip(source: str | os.PathLike, *, pretrained: str | None = None, device: str = "cpu") -> ClipEmbedder:
    """Load a CLIP model for rewards; nothing is downloaded.

    * A folder (or a name already in the local Hugging Face cache) in the Hugging Face format
      (``config.json`` of a ``CLIPModel``, its weights and a tokenizer, as ``save_pretrained``
      writes them; ``rewardlab vlm train-clip`` saves one) loads with ``transformers``'
      ``CLIPModel`` and ``AutoTokenizer`` (``local_files_only=True``).
    * ``"open_clip:ARCH"`` (for example ``"open_clip:ViT-B-32"``) builds an open_clip model when
      ``open_clip`` is installed, with weights from the local file or cached tag ``pretrained``.

    Args:
        source: a checkpoint folder, a cached hub name, or ``"open_clip:ARCH"``.
        pretrained: open_clip only: a local weights file or a cached pretrained tag.
        device: torch device of the model.

    Returns:
        A :class:`ClipEmbedder`.

    Raises:
        VLMError: the checkpoint is not a CLIP model with an image tower, or cannot be read
            locally (names the source).
        ImportError: ``transformers`` (or ``open_clip``) is not installed; says which extra.
    """
    text = os.fspath(source)
    if text.startswith(OPEN_CLIP_PREFIX):
        return _load_open_clip(text[len(OPEN_CLIP_PREFIX) :], pretrained, device)
    transformers = require_transformers()
    folder = Path(text)
    config_path = folder / "config.json"
    if folder.is_dir() and config_path.is_file():
        model_type = json.loads(config_path.read_text()).get("model_type")
        if model_type != "clip":
            raise VLMError(
                f"model {text!r}: has no image tower (model_type {model_type!r}); expected a CLIPModel checkpoint "
                "(model_type 'clip') with an image and a text tower"
            )
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # a weights bar on stderr for every load of a small model
    try:
        model = transformers.CLIPModel.from_pretrained(text, local_files_only=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(text, local_files_only=True)
    except OSError as error:
        raise VLMError(
            f"model {text!r}: cannot load a CLIP checkpoint from the local folder or cache (nothing is downloaded): "
            f"{str(error).splitlines()[0]}"
        ) from None
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    embedder = from_transformers(model.to(device), tokenizer, name=text)
    if folder.is_dir():
        mean, std = _processor_stats(folder)
        embedder.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        embedder.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return embedder


def _load_open_clip(arch: str, pretrained: str | None, device: str) -> ClipEmbedder:
    try:
        import open_clip  # type: ignore[import-not-found]
    except ImportError:  # optional: open_clip models are used where open_clip is installed
        raise ImportError(f"model 'open_clip:{arch}': needs `open_clip` (pip install open_clip_torch)") from None
    try:
        model = open_clip.create_model(arch, pretrained=pretrained, device=device)
    except RuntimeError as error:  # an unknown architecture or tag
        raise VLMError(f"model 'open_clip:{arch}': {error}") from None
    if getattr(model, "visual", None) is None:
        raise VLMError(f"model 'open_clip:{arch}': has no image tower")
    model.eval()
    tokenizer = open_clip.get_tokenizer(arch)
    size = model.visual.image_size
    size = size if isinstance(size, int) else size[0]
    mean = getattr(model.visual, "image_mean", None) or CLIP_IMAGE_MEAN
    std = getattr(model.visual, "image_std", None) or CLIP_IMAGE_STD

    def image_fn(pixels: torch.Tensor) -> torch.Tensor:
        return model.encode_image(pixels.to(device)).cpu()

    def text_fn(texts: list[str]) -> torch.Tensor:
        return model.encode_text(tokenizer(texts).to(device)).cpu()

    return ClipEmbedder(image_fn, text_fn, int(size), mean=mean, std=std, name=f"open_clip:{arch}", model=model)
