"""``RewardModel``: a thin shell (static config + jitted functions) around Flax nnx reward networks.

The network is split once into a static ``graphdef`` and a parameter ``State``; the pure
functions merge them inside ``jit`` and ``vmap`` over the leading ensemble axis of the state.

References:
    Christiano et al., "Deep reinforcement learning from human preferences", NeurIPS 2017.
    Ng, Harada & Russell, "Policy invariance under reward transformations", ICML 1999.
    Fu, Luo & Levine, "Learning Robust Rewards with Adversarial IRL" (AIRL), ICLR 2018.
    Mnih et al., "Human-level control through deep RL", Nature 2015 (the default CNN).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rewardlab._checks import check_prng_key
from rewardlab.rewards._config import RewardNetConfig
from rewardlab.rewards._networks import RewardNet
from rewardlab.rewards._normalizer import RunningStats, init_running_stats, normalize_leaf, update_running_stats
from rewardlab.rewards._spaces import Leaf, encode_leaf, expected_shape, get_leaf, leaf_shape_ok, space_leaves


class RewardParams(NamedTuple):
    """Parameters of a ``RewardModel``; gradients are taken w.r.t. ``net`` only."""

    net: Any  # nnx.State of RewardNet, every leaf stacked on a leading ensemble axis [E, ...]
    obs_stats: RunningStats  # running mean/var of the normalised observation leaves (shared by members)


def check_leaves(argument: str, tree: Any, leaves: tuple[Leaf, ...], n: int | None) -> int:
    """Validate ``tree`` against ``leaves`` (shapes [N, *leaf.shape]); returns N.

    Raises:
        ValueError: naming the argument (and Dict key), the expected and the actual shape.
    """
    if leaves[0].path and not isinstance(tree, Mapping):
        keys = sorted({leaf.path[0] for leaf in leaves})
        raise ValueError(f"{argument}: expected a dict with keys {keys} (Dict space), got {type(tree).__name__}")
    for leaf in leaves:
        try:
            x = get_leaf(tree, leaf.path)
        except (KeyError, TypeError, IndexError):
            raise ValueError(
                f"{leaf.describe(argument)}: missing; expected an array of shape {expected_shape(leaf)}"
            ) from None
        shape = tuple(np.shape(x))
        if not shape:
            raise ValueError(
                f"{leaf.describe(argument)}: expected shape {expected_shape(leaf)}, got a scalar of shape ()"
            )
        if not leaf_shape_ok(leaf, shape[1:]):
            raise ValueError(f"{leaf.describe(argument)}: expected shape {expected_shape(leaf)}, got {shape}")
        if n is None:
            n = shape[0]
        elif shape[0] != n:
            raise ValueError(
                f"{leaf.describe(argument)}: expected a leading batch axis of N={n} (as the other inputs), got shape {shape}"
            )
    assert n is not None  # leaves is never empty, so the loop set it
    return n


def check_dones(dones: Any, n: int | None) -> int:
    """``dones`` must be [N] (bool, int or float); returns N."""
    shape = tuple(np.shape(dones))
    if len(shape) != 1 or (n is not None and shape[0] != n):
        raise ValueError(f"dones: expected shape [N] with N={n if n is not None else 'N'}, got {shape}")
    return shape[0]


def _init_core(structure: tuple, key: jax.Array) -> RewardParams:
    config, obs_leaves, act_features = structure

    def member(member_key: jax.Array) -> Any:
        return nnx.state(RewardNet(config, obs_leaves, act_features, rngs=nnx.Rngs(member_key)))

    net = jax.vmap(member)(jax.random.split(key, config.ensemble_size))
    return RewardParams(net, init_running_stats(obs_leaves))


@functools.lru_cache(maxsize=64)
def _jitted_init(structure: tuple) -> Any:
    """One compiled initialiser per parameter structure, shared by every model that has it."""
    return jax.jit(functools.partial(_init_core, structure))


class RewardModel:
    """A learned reward r(s, a, s', done) over gymnasium spaces, as an ensemble of Flax nnx networks.

    Each member computes g over the features of ``config.inputs`` (concatenated in that
    order) with an MLP; image observations go through a CNN first. With
    ``config.potential_shaping`` the reward is shaped by a learned potential h (Ng et al.,
    1999; AIRL's f = g + γh(s') − h(s), Fu et al., 2018)::

        r(s, a, s', d) = g(s, a, s', d) + γ (1 − d) h(s') − h(s)

    Non-image Box observation leaves are normalised, x̂ = clip((x − μ)/sqrt(σ² + 1e-8), −5, 5),
    with running statistics in ``params.obs_stats`` (see ``update_normalizer``); images are
    scaled by 1/255; Discrete and MultiDiscrete values are one-hot encoded.

    Args:
        config: architecture.
        observation_space: Box, Discrete, MultiBinary, MultiDiscrete or (nested) Dict of those.
        action_space: same kinds (Box actions are used as they are, never normalised).

    Attributes:
        config, observation_space, action_space, ensemble_size: as given (E = config.ensemble_size).
        obs_leaves, act_leaves: the per-leaf encodings of the spaces (see ``_spaces.Leaf``).
        uses: which of obs / act / next_obs / done the shaped reward reads.

    Example:
        >>> import gymnasium as gym, jax, numpy as np
        >>> model = RewardModel(RewardNetConfig(hidden_sizes=(16,), ensemble_size=3),
        ...                     gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2))
        >>> params = model.init(jax.random.key(0))
        >>> obs = np.zeros((5, 4), np.float32)
        >>> model.apply(params, obs, np.array([0, 1, 0, 1, 1]), obs, np.zeros(5, bool)).shape
        (3, 5)
    """

    def __init__(self, config: RewardNetConfig, observation_space: gym.Space, action_space: gym.Space) -> None:
        if not isinstance(config, RewardNetConfig):
            raise ValueError(f"config: expected a RewardNetConfig, got {type(config).__name__}")
        if not isinstance(observation_space, gym.Space):
            raise ValueError(f"observation_space: expected a gymnasium Space, got {type(observation_space).__name__}")
        if not isinstance(action_space, gym.Space):
            raise ValueError(f"action_space: expected a gymnasium Space, got {type(action_space).__name__}")
        self.config = config
        self.observation_space = observation_space
        self.action_space = action_space
        self.ensemble_size = config.ensemble_size
        self.obs_leaves = space_leaves(observation_space, is_observation=True)
        self.act_leaves = space_leaves(action_space, is_observation=False)
        self.act_features = sum(leaf.features for leaf in self.act_leaves)
        inputs = config.inputs
        shaping = config.potential_shaping
        self.uses = {
            "obs": "obs" in inputs or shaping,
            "act": "act" in inputs,
            "next_obs": "next_obs" in inputs or shaping,
            "done": "done" in inputs or shaping,
        }
        self._base_uses = {name: name in inputs for name in ("obs", "act", "next_obs", "done")}
        abstract = nnx.eval_shape(lambda: self._build(nnx.Rngs(0)))
        self._graphdef = nnx.graphdef(abstract)
        self._init = _jitted_init(self._structure_key())
        self._apply = jax.jit(self._reward_core, static_argnames="part")

    def __repr__(self) -> str:
        return f"RewardModel({self.config!r}, {self.observation_space!r}, {self.action_space!r})"

    def _build(self, rngs: nnx.Rngs) -> RewardNet:
        return RewardNet(self.config, self.obs_leaves, self.act_features, rngs=rngs)

    def _structure_key(self) -> tuple:
        # Settings that leave the parameters untouched are reset, so that models differing only in
        # them (activation, discount, normalisation switch) share one compiled ``init``.
        config = dataclasses.replace(self.config, activation="relu", discount=0.99, normalize_inputs=True)
        return config, self.obs_leaves, self.act_features

    # Pure cores ------------------------------------------------------------------------------
    def preprocess_obs(self, obs_stats: RunningStats, obs: Any) -> list[jax.Array]:
        """Per-leaf network inputs: normalised flat features [N, F] or images [N, H, W, C] in [0, 1]."""
        blocks = []
        for leaf in self.obs_leaves:
            block = encode_leaf(leaf, get_leaf(obs, leaf.path))
            if leaf.normalize and self.config.normalize_inputs:
                block = normalize_leaf(obs_stats, leaf, block)
            blocks.append(block)
        return blocks

    def preprocess_acts(self, acts: Any) -> jax.Array:
        """Action features [N, F_act] (flattened Box/MultiBinary, one-hot Discrete/MultiDiscrete)."""
        parts = [encode_leaf(leaf, get_leaf(acts, leaf.path)) for leaf in self.act_leaves]
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)

    def _reward_core(
        self, params: RewardParams, obs: Any, acts: Any, next_obs: Any, dones: Any, part: str = "reward"
    ) -> jax.Array:
        stats = params.obs_stats
        if part == "potential":
            potential_blocks = self.preprocess_obs(stats, obs)
            return jax.vmap(lambda state: nnx.merge(self._graphdef, state).potential(potential_blocks))(params.net)
        uses = self.uses if part == "reward" else self._base_uses
        obs_blocks = self.preprocess_obs(stats, obs) if uses["obs"] else None
        next_blocks = self.preprocess_obs(stats, next_obs) if uses["next_obs"] else None
        act_features = self.preprocess_acts(acts) if uses["act"] else None
        done = jnp.asarray(dones, jnp.float32) if uses["done"] else None
        shaped = part == "reward" and self.config.potential_shaping
        discount = self.config.discount

        def member(state: Any) -> jax.Array:
            net = nnx.merge(self._graphdef, state)
            g = net.base_reward(obs_blocks, act_features, next_blocks, None if done is None else done[:, None])
            if not shaped:
                return g
            assert obs_blocks is not None and next_blocks is not None and done is not None  # shaping reads s, s', dones
            h, h_next = net.potential_pair(obs_blocks, next_blocks)
            return g + discount * (1.0 - done) * h_next - h

        return jax.vmap(member)(params.net)

    # Public entry points (shapes checked at the door, then the jitted cores) -----------------
    def init(self, key: jax.Array | int) -> RewardParams:
        """Fresh parameters: E members initialised from independent keys; μ = 0, σ² = 1, count = 0.

        Args:
            key: a JAX PRNG key (``jax.random.key`` or ``PRNGKey``) or an int seed.
        """
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            key = jax.random.key(int(key))
        check_prng_key("key", key)
        # The partitionable threefry variant (JAX's default) makes XLA CPU compile long for every
        # random draw, i.e. per layer; init is small and never sharded, so use the classic variant
        # (fixed here, so a key gives the same parameters whatever the global setting).
        with jax.threefry_partitionable(False):
            return self._init(key)

    def _check(self, params: Any, obs: Any, acts: Any, next_obs: Any, dones: Any, uses: dict[str, bool]) -> None:
        if not isinstance(params, tuple) or not hasattr(params, "net") or not hasattr(params, "obs_stats"):
            raise ValueError(f"params: expected RewardParams(net, obs_stats), got {type(params).__name__}")
        n = None
        for argument, value, leaves in (
            ("obs", obs, self.obs_leaves),
            ("acts", acts, self.act_leaves),
            ("next_obs", next_obs, self.obs_leaves),
        ):
            if value is None:
                if uses[argument if argument != "acts" else "act"]:
                    raise ValueError(
                        f"{argument}: required by this model (inputs={self.config.inputs}, "
                        f"potential_shaping={self.config.potential_shaping}), got None"
                    )
                continue
            n = check_leaves(argument, value, leaves, n)
        if dones is None:
            if uses["done"]:
                raise ValueError(
                    f"dones: required by this model (inputs={self.config.inputs}, "
                    f"potential_shaping={self.config.potential_shaping}), got None"
                )
        else:
            n = check_dones(dones, n)
        if n == 0:
            raise ValueError("obs: expected a batch of N >= 1 transitions, got N=0")

    def apply(self, params: RewardParams, obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        """Rewards of every member on N transitions (pure; jitted; differentiable in ``params.net``).

        Arguments the model does not use may be None.

        Args:
            params: from ``init`` (or training).
            obs: ``[N, *obs_shape]`` s (a dict of arrays for Dict spaces).
            acts: ``[N, *act_shape]`` a (int ``[N]`` for Discrete, one-hot inside).
            next_obs: ``[N, *obs_shape]`` s'.
            dones: ``[N]`` bool or float.

        Returns:
            ``[E, N]`` float32: r = g + γ(1 − done)h(s') − h(s) with shaping, else g.

        Raises:
            ValueError: a shape does not match the spaces (the message names the argument).
        """
        self._check(params, obs, acts, next_obs, dones, self.uses)
        return self._apply(params, obs, acts, next_obs, dones, part="reward")

    def base_reward(self, params: RewardParams, obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        """g alone, ``[E, N]`` (the transferable AIRL reward); equals ``apply`` without shaping."""
        self._check(params, obs, acts, next_obs, dones, self._base_uses)
        return self._apply(params, obs, acts, next_obs, dones, part="base")

    def potential(self, params: RewardParams, obs: Any) -> jax.Array:
        """The learned potential h(s), ``[E, N]`` (requires ``config.potential_shaping``)."""
        if not self.config.potential_shaping:
            raise ValueError("potential: this model has no potential (config.potential_shaping=False)")
        self._check(params, obs, None, None, None, {"obs": True, "act": False, "next_obs": False, "done": False})
        return self._apply(params, obs, None, None, None, part="potential")

    def update_normalizer(self, params: RewardParams, obs: Any) -> RewardParams:
        """Merge a batch ``[N, *obs_shape]`` into ``params.obs_stats`` (pure; Chan et al. parallel variance).

        μ' = μ + δ n/(c + n), σ²' = (cσ² + n v + δ² c n/(c + n))/(c + n), c' = c + n with batch
        mean m, population variance v, δ = m − μ. Only non-image Box leaves carry statistics.
        """
        if not isinstance(params, tuple) or not hasattr(params, "obs_stats"):
            raise ValueError(f"params: expected RewardParams(net, obs_stats), got {type(params).__name__}")
        n = check_leaves("obs", obs, self.obs_leaves, None)
        if n == 0:
            raise ValueError("obs: expected a batch of N >= 1 observations, got N=0")
        # Not jitted: a handful of array ops, and host batches of ever-changing N would recompile.
        return params._replace(obs_stats=update_running_stats(params.obs_stats, self.obs_leaves, obs))
