"""Learned exploration bonuses: RND (global) and E3B (episodic), in JAX / Flax nnx / Optax.

Both follow the stateful ``RewardFn`` contract of :mod:`rewardlab.intrinsic._counts` (one call
= one step of N envs, row i = env i, ``dones[i]`` ends env i's episode) and score s' = ``next_obs``.
Observations are flattened to float32 vectors (the dict entries ``obs_keys``, sorted, when the
observation is a dict). Their networks train on the visited states every ``update_every`` calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from rewardlab.intrinsic._counts import check_dones, select_leaves


def flatten_obs(obs: Any, keys: Sequence[str] | None) -> np.ndarray:
    """A batch of observations as float32 rows ``[N, D]`` (the selected dict entries, concatenated)."""
    leaves = select_leaves(obs, keys)
    n = leaves[0].shape[0]
    return np.concatenate([leaf.reshape(n, -1).astype(np.float32) for leaf in leaves], axis=1)


def fit_steps(
    loss: Callable[[Any], jax.Array], optimizer: Any, params: Any, opt_state: Any, num_updates: int
) -> tuple[Any, Any, jax.Array]:
    """``num_updates`` Optax steps on ``loss(params)`` in one ``lax.scan``; returns params, state, last loss."""

    def step(carry: tuple[Any, Any], _: None) -> tuple[tuple[Any, Any], jax.Array]:
        p, s = carry
        value, grads = jax.value_and_grad(loss)(p)
        updates, s = optimizer.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), value

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), None, length=num_updates)
    return params, opt_state, losses[-1]


class _MLP(nnx.Module):
    def __init__(self, d_in: int, hidden: int, d_out: int, rngs: nnx.Rngs) -> None:
        self.l1 = nnx.Linear(d_in, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)
        self.l3 = nnx.Linear(hidden, d_out, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.l3(nnx.relu(self.l2(nnx.relu(self.l1(x)))))


def tree_arrays(tree: Any) -> list[np.ndarray]:
    """The leaves of a pytree (params, optimizer state) as numpy arrays, in flattening order."""
    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


def tree_from_arrays(like: Any, arrays: Sequence[Any], what: str) -> Any:
    """``arrays`` (from :func:`tree_arrays`) put back into the structure of ``like``, shapes checked.

    Raises:
        ValueError: the number of leaves or a leaf's shape differs from ``like``'s (``what`` named).
    """
    leaves, treedef = jax.tree.flatten(like)
    if len(arrays) != len(leaves):
        raise ValueError(f"{what}: expected {len(leaves)} arrays, got {len(arrays)}")
    restored = []
    for leaf, array in zip(leaves, arrays, strict=True):
        array = np.asarray(array)
        if array.shape != np.shape(leaf):
            raise ValueError(f"{what}: expected an array of shape {np.shape(leaf)}, got {array.shape}")
        restored.append(jnp.asarray(array, dtype=jnp.asarray(leaf).dtype))
    return jax.tree.unflatten(treedef, restored)


def _check_positive(name: str, value: Any, kind: type = int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int) or not value > 0:
        raise ValueError(f"{name}: expected a positive {kind.__name__}, got {value!r}")


class RNDBonus:
    """Random network distillation: b(s') = ‖f(x') − f̂_θ(x')‖² / k, a global bonus.

    f is a fixed random MLP, f̂_θ an MLP trained (Adam) to match it on the visited states, and x'
    the observation normalised by the running mean and standard deviation of the visited states
    (clipped to [−5, 5]), as in Burda et al., "Exploration by random network distillation", ICLR
    2019. States seen often are predicted well and get small bonuses. Every ``update_every``
    calls θ takes ``num_updates`` Adam steps on the states of those calls.

    Args:
        obs_keys: for dict observations, the entries the networks read (all when None).
        embedding_dim: k, the output size of f and f̂.
        hidden_dim: hidden width of both MLPs.
        learning_rate: Adam's step size.
        update_every: calls between training rounds.
        num_updates: Adam steps per round (full batch over the buffered states).
        seed: seeds f and the initial f̂.
    """

    episodic = False

    def __init__(
        self,
        *,
        obs_keys: Sequence[str] | None = None,
        embedding_dim: int = 32,
        hidden_dim: int = 64,
        learning_rate: float = 1e-3,
        update_every: int = 64,
        num_updates: int = 4,
        seed: int = 0,
    ) -> None:
        for name, value in (("embedding_dim", embedding_dim), ("hidden_dim", hidden_dim)):
            _check_positive(name, value)
        _check_positive("update_every", update_every)
        _check_positive("num_updates", num_updates)
        _check_positive("learning_rate", learning_rate, float)
        self.obs_keys = None if obs_keys is None else tuple(obs_keys)
        self.embedding_dim, self.hidden_dim, self.seed = embedding_dim, hidden_dim, seed
        self.update_every, self.num_updates = update_every, num_updates
        self.optimizer = optax.adam(learning_rate)
        self._built = False
        self._buffer: list[np.ndarray] = []
        self.num_calls = 0
        self.count = 0
        self.mean: np.ndarray = np.zeros(0)
        self.var: np.ndarray = np.zeros(0)

    def _build(self, dim: int) -> None:
        rngs = nnx.Rngs(self.seed)
        target = _MLP(dim, self.hidden_dim, self.embedding_dim, rngs)
        predictor = _MLP(dim, self.hidden_dim, self.embedding_dim, rngs)
        graphdef, self.target_params = nnx.split(target)
        _, self.params = nnx.split(predictor)
        self.opt_state = self.optimizer.init(self.params)
        self.mean, self.var = np.zeros(dim), np.ones(dim)

        def errors(params: Any, target_params: Any, x: jax.Array) -> jax.Array:
            diff = nnx.merge(graphdef, params)(x) - jax.lax.stop_gradient(nnx.merge(graphdef, target_params)(x))
            return jnp.mean(jnp.square(diff), axis=-1)

        def train(params: Any, opt_state: Any, target_params: Any, x: jax.Array) -> tuple[Any, Any, jax.Array]:
            return fit_steps(
                lambda q: jnp.mean(errors(q, target_params, x)), self.optimizer, params, opt_state, self.num_updates
            )

        self._errors = jax.jit(errors)
        self._train = jax.jit(train)
        self._built = True

    def _normalise(self, x: np.ndarray) -> np.ndarray:
        # Running mean and variance of every state seen (Chan et al.'s parallel update).
        n = x.shape[0]
        total = self.count + n
        delta = x.mean(0) - self.mean
        batch_var = x.var(0)
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.mean = self.mean + delta * n / total
        self.count = total
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -5.0, 5.0).astype(np.float32)

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        check_dones(dones, "RNDBonus")
        x = flatten_obs(next_obs, self.obs_keys)
        if not self._built:
            self._build(x.shape[1])
        x = self._normalise(x)
        bonus = np.asarray(self._errors(self.params, self.target_params, x), np.float32)
        self._buffer.append(x)
        self.num_calls += 1
        if self.num_calls % self.update_every == 0:
            batch = np.concatenate(self._buffer)
            self._buffer = []
            self.params, self.opt_state, self.last_loss = self._train(
                self.params, self.opt_state, self.target_params, batch
            )
        return bonus

    def state_dict(self) -> dict[str, Any]:
        """Networks (leaf arrays), Adam's state, the normaliser, the buffered states and the call count."""
        if not self._built:
            return {"dim": 0, "num_calls": self.num_calls}
        return {
            "dim": int(self.mean.shape[0]),
            "num_calls": self.num_calls,
            "target_params": tree_arrays(self.target_params),
            "params": tree_arrays(self.params),
            "opt_state": tree_arrays(self.opt_state),
            "mean": np.asarray(self.mean),
            "var": np.asarray(self.var),
            "count": self.count,
            "buffer": [np.asarray(x) for x in self._buffer],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict` (of an RND with the same sizes)."""
        self.num_calls = int(state["num_calls"])
        if not state["dim"]:
            return
        self._build(int(state["dim"]))
        self.target_params = tree_from_arrays(self.target_params, state["target_params"], "target_params")
        self.params = tree_from_arrays(self.params, state["params"], "params")
        self.opt_state = tree_from_arrays(self.opt_state, state["opt_state"], "opt_state")
        self.mean, self.var = np.asarray(state["mean"], np.float64), np.asarray(state["var"], np.float64)
        self.count = int(state["count"])
        self._buffer = [np.asarray(x, np.float32) for x in state["buffer"]]


def sherman_morrison_update(c_inv: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """(C + φφᵀ)⁻¹ from C⁻¹ by the Sherman–Morrison formula: C⁻¹ − (C⁻¹φ)(C⁻¹φ)ᵀ / (1 + φᵀC⁻¹φ), C symmetric.

    Example:
        >>> c = np.array([[2.0, 0.5], [0.5, 1.0]]); phi = np.array([1.0, -1.0])
        >>> bool(np.allclose(sherman_morrison_update(np.linalg.inv(c), phi), np.linalg.inv(c + np.outer(phi, phi))))
        True
    """
    u = c_inv @ phi
    return c_inv - np.outer(u, u) / (1.0 + phi @ u)


class E3BBonus:
    """E3B: b(s') = φ(s')ᵀ C⁻¹ φ(s'), C = λI + Σ φφᵀ over the states scored earlier in the episode.

    Henaff et al., "Exploration via elliptical episodic bonuses", NeurIPS 2022. C⁻¹ of each env
    starts at I/λ, takes a Sherman–Morrison rank-1 update with φ(s') after each step
    (:func:`sherman_morrison_update`) and returns to I/λ when the env's episode ends. φ is an
    inverse-dynamics embedding: an MLP encoder trained (Adam, cross-entropy) with a head that
    predicts a_t from [φ(s_t); φ(s_{t+1})], on the transitions of the last ``update_every`` calls;
    or any fixed ``embedding`` (``[N, D]`` observations → ``[N, k]``), then nothing is trained.

    Args:
        num_actions: the number of discrete actions (for the inverse-dynamics head); None with
            ``embedding``.
        embedding: a fixed φ, or None for the inverse-dynamics embedding.
        obs_keys: for dict observations, the entries φ reads (all when None).
        ridge: λ > 0.
        embedding_dim: k of the inverse-dynamics embedding.
        hidden_dim: hidden width of its MLPs.
        learning_rate: Adam's step size.
        update_every: calls between training rounds.
        num_updates: Adam steps per round.
        seed: seeds the networks.

    Raises:
        ValueError: neither ``num_actions`` nor ``embedding`` given, or a non-positive size.
    """

    episodic = True

    def __init__(
        self,
        num_actions: int | None = None,
        *,
        embedding: Callable[[np.ndarray], np.ndarray] | None = None,
        obs_keys: Sequence[str] | None = None,
        ridge: float = 0.1,
        embedding_dim: int = 32,
        hidden_dim: int = 64,
        learning_rate: float = 1e-3,
        update_every: int = 64,
        num_updates: int = 4,
        seed: int = 0,
    ) -> None:
        if embedding is None:
            if num_actions is None:
                raise ValueError("num_actions: expected the number of discrete actions (or give embedding=), got None")
            _check_positive("num_actions", num_actions)
        elif not callable(embedding):
            raise ValueError(f"embedding: expected a callable [N, D] -> [N, k], got {type(embedding).__name__}")
        _check_positive("ridge", ridge, float)
        for name, value in (("embedding_dim", embedding_dim), ("hidden_dim", hidden_dim)):
            _check_positive(name, value)
        _check_positive("update_every", update_every)
        _check_positive("num_updates", num_updates)
        _check_positive("learning_rate", learning_rate, float)
        self.num_actions, self.embedding, self.obs_keys = (
            num_actions,
            embedding,
            None if obs_keys is None else tuple(obs_keys),
        )
        self.ridge, self.embedding_dim, self.hidden_dim, self.seed = float(ridge), embedding_dim, hidden_dim, seed
        self.update_every, self.num_updates = update_every, num_updates
        self.optimizer = optax.adam(learning_rate)
        self.c_inv: np.ndarray | None = None  # [N, k, k], C⁻¹ of each env's episode
        self._built = False
        self._buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.num_calls = 0

    def _build(self, dim: int) -> None:
        assert self.num_actions is not None
        self._dim = dim
        rngs = nnx.Rngs(self.seed)
        encoder = _MLP(dim, self.hidden_dim, self.embedding_dim, rngs)
        head = _MLP(2 * self.embedding_dim, self.hidden_dim, self.num_actions, rngs)
        enc_def, enc_params = nnx.split(encoder)
        head_def, head_params = nnx.split(head)
        self.params = (enc_params, head_params)
        self.opt_state = self.optimizer.init(self.params)

        def embed(params: Any, x: jax.Array) -> jax.Array:
            return nnx.merge(enc_def, params[0])(x)

        def loss_fn(params: Any, x: jax.Array, a: jax.Array, x_next: jax.Array) -> jax.Array:
            phi = jnp.concatenate([embed(params, x), embed(params, x_next)], axis=-1)
            logits = nnx.merge(head_def, params[1])(phi)
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, a))

        def train(params: Any, opt_state: Any, x: jax.Array, a: jax.Array, x_next: jax.Array) -> tuple[Any, Any, Any]:
            return fit_steps(lambda q: loss_fn(q, x, a, x_next), self.optimizer, params, opt_state, self.num_updates)

        self._embed = jax.jit(embed)
        self._train = jax.jit(train)
        self._built = True

    def phi(self, x: np.ndarray) -> np.ndarray:
        """φ of flattened observations ``[N, D]`` → ``[N, k]`` float64."""
        if self.embedding is not None:
            return np.asarray(self.embedding(x), np.float64)
        if not self._built:
            self._build(x.shape[1])
        return np.asarray(self._embed(self.params, x), np.float64)

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        dones = check_dones(dones, "E3BBonus")
        x_next = flatten_obs(next_obs, self.obs_keys)
        phi = self.phi(x_next)
        n, k = phi.shape
        if self.c_inv is None:
            self.c_inv = np.tile(np.eye(k) / self.ridge, (n, 1, 1))
        if self.c_inv.shape[:2] != (n, k):
            raise ValueError(f"dones: expected N={self.c_inv.shape[0]} envs (row i is env i), got {n}")
        bonus = np.einsum("ni,nij,nj->n", phi, self.c_inv, phi).astype(np.float32)
        for i in range(n):
            if dones[i]:
                self.c_inv[i] = np.eye(k) / self.ridge
            else:
                self.c_inv[i] = sherman_morrison_update(self.c_inv[i], phi[i])
        if self.embedding is None:
            self._buffer.append((flatten_obs(obs, self.obs_keys), np.asarray(acts).reshape(n).astype(np.int32), x_next))
            self.num_calls += 1
            if self.num_calls % self.update_every == 0:
                x, a, xn = (np.concatenate(part) for part in zip(*self._buffer, strict=True))
                self._buffer = []
                self.params, self.opt_state, self.last_loss = self._train(self.params, self.opt_state, x, a, xn)
        return bonus

    def state_dict(self) -> dict[str, Any]:
        """The inverse-dynamics networks (leaf arrays), Adam's state, the buffered transitions and the call count.

        C⁻¹ is left out: it belongs to the running episodes, which a resumed run starts afresh.
        """
        if not self._built:
            return {"dim": 0, "num_calls": self.num_calls}
        return {
            "dim": self._dim,
            "num_calls": self.num_calls,
            "params": tree_arrays(self.params),
            "opt_state": tree_arrays(self.opt_state),
            "buffer": [[np.asarray(part) for part in step] for step in self._buffer],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict` (of an E3B with the same sizes); C⁻¹ restarts at I/λ."""
        self.c_inv = None
        self.num_calls = int(state["num_calls"])
        if not state["dim"]:
            return
        self._build(int(state["dim"]))
        self.params = tree_from_arrays(self.params, state["params"], "params")
        self.opt_state = tree_from_arrays(self.opt_state, state["opt_state"], "opt_state")
        self._buffer = [
            (np.asarray(x, np.float32), np.asarray(a, np.int32), np.asarray(xn, np.float32))
            for x, a, xn in state["buffer"]
        ]
