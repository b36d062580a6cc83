"""Scoring fragment pairs with a reward model: the jitted functions, held by whoever scores again and again.

Query selection and the preference metrics score many pairs with one reward model, round
after round. :class:`PairScorer` holds the two jitted functions they need, built once for
one model and one preference model; pairs go through them ``chunk_pairs`` at a time (the
last chunk padded by repeating its last pair), so every call has the same shapes and the
functions compile once per fragment length however many pairs are scored. A loop keeps
its scorer for the whole run (``rl.train_pbrl`` does); a one-off score builds one.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab._types import FragmentPairs, RewardModelLike
from rewardlab.preferences._bradley_terry import check_fragment_pairs, preference_probabilities
from rewardlab.preferences._preference_model import PreferenceModel, check_preference_model


def _pad_take(tree: Any, start: int, size: int, total: int) -> Any:
    """Pairs ``start .. start + size`` of ``tree`` (leading axis ``total``), the last repeated past the end."""
    index = np.minimum(np.arange(start, start + size), total - 1)
    return jax.tree.map(lambda x: np.asarray(x)[index], tree)


class PairScorer:
    """A reward model's jitted scoring of fragment pairs: member probabilities and mean rewards.

    Holds static settings and the jitted functions only (no parameters): pass the current
    ``params`` to every call. Keep one scorer for as long as the model and the preference
    model stay the same; each new scorer compiles anew.

    Args:
        model: reward model (ensemble) with ``apply(params, obs, acts, next_obs, dones) -> [E, N]``.
        preference_model: the score s and temperature τ of P = logistic((s¹ − s²)/τ) (see
            ``preference_probabilities``; its label noise does not enter the probabilities).
        chunk_pairs: pairs per jitted call (bounds memory; every call has this many pairs).

    Raises:
        ValueError: ``preference_model`` is not a ``PreferenceModel`` or ``chunk_pairs`` < 1.

    Example:
        >>> import numpy as np
        >>> from rewardlab.preferences import synthetic_pairs
        >>> class TwoMembers:  # member 0: r = obs, member 1: r = −obs
        ...     def apply(self, params, obs, acts, next_obs, dones):
        ...         return obs[None, :, 0] * np.array([[1.0], [-1.0]])
        >>> pairs = synthetic_pairs(np.zeros((1, 2)))._replace(obs=np.array([[[[1.0]], [[0.0]]]], np.float32))
        >>> scorer = PairScorer(TwoMembers())
        >>> scorer.probabilities(None, pairs).round(3)  # members × pairs: logistic(±1)
        array([[0.731],
               [0.269]], dtype=float32)
        >>> scorer.mean_rewards(None, pairs).tolist()  # the members' mean reward of every step
        [[[0.0], [0.0]]]
    """

    def __init__(
        self,
        model: RewardModelLike,
        *,
        preference_model: PreferenceModel = PreferenceModel(),
        chunk_pairs: int = 128,
    ) -> None:
        check_preference_model(preference_model)
        if isinstance(chunk_pairs, bool) or not isinstance(chunk_pairs, (int, np.integer)) or chunk_pairs < 1:
            raise ValueError(f"chunk_pairs: expected an integer >= 1, got {chunk_pairs!r}")
        self.model = model
        self.preference_model = preference_model
        self.chunk_pairs = int(chunk_pairs)
        self.chunk_probabilities = jax.jit(self._chunk_probabilities)
        self.chunk_mean_rewards = jax.jit(self._chunk_mean_rewards)

    # Pure cores ------------------------------------------------------------------------------
    def _chunk_probabilities(self, params: Any, pairs: FragmentPairs) -> jax.Array:
        return preference_probabilities(self.model, params, pairs, preference_model=self.preference_model)

    def _chunk_mean_rewards(self, params: Any, obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        num_pairs, _, length = jnp.shape(dones)
        flat = lambda x: jnp.reshape(x, (num_pairs * 2 * length, *jnp.shape(x)[3:]))  # noqa: E731
        rewards = self.model.apply(params, *jax.tree.map(flat, (obs, acts, next_obs, dones)))
        return jnp.reshape(jnp.mean(rewards, axis=0), (num_pairs, 2, length))

    # Host shell --------------------------------------------------------------------------------
    def probabilities(self, params: Any, pairs: FragmentPairs) -> np.ndarray:
        """P_e(σ¹ ≻ σ²) of every member on every pair: ``[E, B]`` (host numpy)."""
        num_pairs, _ = check_fragment_pairs(pairs, "pairs")
        size = self.chunk_pairs
        pieces = []
        for start in range(0, num_pairs, size):
            chunk = FragmentPairs._make(
                [*(None if f is None else _pad_take(f, start, size, num_pairs) for f in pairs[:5]), None, None]
            )
            pieces.append(np.asarray(self.chunk_probabilities(params, chunk)))
        return np.concatenate(pieces, axis=1)[:, :num_pairs]

    def mean_rewards(self, params: Any, pairs: FragmentPairs) -> np.ndarray:
        """Ensemble-mean learned reward of every transition of ``pairs``: ``[B, 2, L]`` (host numpy)."""
        num_pairs, length = check_fragment_pairs(pairs, "pairs")
        size = self.chunk_pairs
        pieces = []
        for start in range(0, num_pairs, size):
            chunk = _pad_take(tuple(pairs[:4]), start, size, num_pairs)
            pieces.append(np.asarray(self.chunk_mean_rewards(params, *chunk)))
        return np.concatenate(pieces, axis=0)[:num_pairs] if pieces else np.zeros((0, 2, length), np.float32)
