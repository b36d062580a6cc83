"""SB3 features extractor for NetHack-like observations (``rewardlab_envs.make_nethack``).

The observation is a dict of the glyph map ``glyphs`` [21, 79], the crop around the agent
``glyphs_crop`` [c, c] (glyph ids), the bottom-line stats ``blstats`` [27] and the message bytes
(not read here: message rewards read ``info["message"]``).
"""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

NETHACK_KEYS = ("glyphs", "glyphs_crop", "blstats")
"""The observation keys :class:`NetHackExtractor` reads."""


def _conv_out(net: nn.Module, shape: tuple[int, ...]) -> int:
    with torch.no_grad():
        return int(net(torch.zeros(1, *shape)).shape[1])


class NetHackExtractor(BaseFeaturesExtractor):
    """Glyph embedding, small convolutions over the crop and the map, an MLP over the stats.

    With E(g) ∈ ℝ^d the embedding of glyph id g (one table shared by crop and map):

    * crop: two 3×3 convolutions (stride 1) over E(crop) [d, c, c], flattened, a linear layer;
    * map: two 3×3 convolutions of stride 2 over E(glyphs) [d, 21, 79], flattened, a linear layer;
    * stats: x ↦ sign(x)·log(1 + |x|) (gold, turns and score span orders of magnitude), then a
      two-layer MLP;

    and features = ReLU(W [h_crop; h_map; h_stats] + b) of size ``features_dim``. Glyph ids come
    from SB3's preprocessing as floats and are rounded back to integers; the number of glyph ids
    is ``max(high) + 1`` of the ``glyphs`` space (the crop's padding id included).

    Args:
        observation_space: a Dict space with ``glyphs``, ``glyphs_crop`` and ``blstats`` Boxes.
        features_dim: size of the output features.
        embedding_dim: d, the size of a glyph's embedding.
        hidden_dim: size of each branch's output.

    Raises:
        ValueError: the space is not a Dict with those keys, or a size is not positive.

    Example:
        >>> import numpy as np
        >>> space = gym.spaces.Dict({
        ...     "glyphs": gym.spaces.Box(0, 5976, (21, 79), np.int16),
        ...     "glyphs_crop": gym.spaces.Box(0, 5976, (9, 9), np.int16),
        ...     "blstats": gym.spaces.Box(-1e9, 1e9, (27,), np.float32),
        ...     "message": gym.spaces.Box(0, 255, (256,), np.uint8)})
        >>> extractor = NetHackExtractor(space, features_dim=32)
        >>> obs = {key: torch.zeros(2, *space[key].shape) for key in space.spaces}
        >>> tuple(extractor(obs).shape)
        (2, 32)
    """

    def __init__(
        self, observation_space: gym.Space, features_dim: int = 128, *, embedding_dim: int = 16, hidden_dim: int = 64
    ) -> None:
        if not isinstance(observation_space, gym.spaces.Dict) or any(
            key not in observation_space.spaces for key in NETHACK_KEYS
        ):
            raise ValueError(
                f"observation_space: expected a Dict space with keys {NETHACK_KEYS}, got {observation_space}"
            )
        for name, value in (
            ("features_dim", features_dim),
            ("embedding_dim", embedding_dim),
            ("hidden_dim", hidden_dim),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        super().__init__(observation_space, features_dim)
        glyph_space = observation_space["glyphs"]
        crop_space = observation_space["glyphs_crop"]
        stats_space = observation_space["blstats"]
        assert isinstance(glyph_space, gym.spaces.Box) and isinstance(crop_space, gym.spaces.Box)
        assert isinstance(stats_space, gym.spaces.Box)
        self.num_glyphs = int(max(glyph_space.high.max(), crop_space.high.max())) + 1
        self.embedding = nn.Embedding(self.num_glyphs, embedding_dim)
        d = embedding_dim
        crop_convs = nn.Sequential(
            nn.Conv2d(d, d, 3, padding=1), nn.ReLU(), nn.Conv2d(d, d, 3, padding=1), nn.ReLU(), nn.Flatten()
        )
        self.crop_net = nn.Sequential(
            crop_convs,
            nn.Linear(_conv_out(crop_convs, (d, *crop_space.shape)), hidden_dim),
            nn.ReLU(),
        )
        map_convs = nn.Sequential(
            nn.Conv2d(d, d, 3, stride=2), nn.ReLU(), nn.Conv2d(d, d, 3, stride=2), nn.ReLU(), nn.Flatten()
        )
        self.map_net = nn.Sequential(
            map_convs,
            nn.Linear(_conv_out(map_convs, (d, *glyph_space.shape)), hidden_dim),
            nn.ReLU(),
        )
        num_stats = int(stats_space.shape[0])
        self.stats_net = nn.Sequential(
            nn.Linear(num_stats, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU()
        )
        self.head = nn.Sequential(nn.Linear(3 * hidden_dim, features_dim), nn.ReLU())

    def _embed(self, glyphs: torch.Tensor) -> torch.Tensor:
        """[B, H, W] glyph ids (floats) → [B, d, H, W] embeddings."""
        ids = glyphs.round().long().clamp_(0, self.num_glyphs - 1)
        return self.embedding(ids).permute(0, 3, 1, 2)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """Features [B, features_dim] of a batch of observations."""
        stats = observations["blstats"].float()
        stats = torch.sign(stats) * torch.log1p(stats.abs())
        hidden = torch.cat(
            [
                self.crop_net(self._embed(observations["glyphs_crop"])),
                self.map_net(self._embed(observations["glyphs"])),
                self.stats_net(stats),
            ],
            dim=1,
        )
        return self.head(hidden)
