"""``ContinuousRegretModel``: a reward network and a Q network of the candidate reward, for the regret model on Box envs.

The regret preference model (Knox et al., TMLR 2024) scores a segment by the optimal
advantage of the candidate reward, −regret(σ) = Σ_t A(s_t, a_t), which needs the candidate
reward's Q. In continuous control Q is learned jointly with the reward: the preference loss
acts on A(s,a) = Q(s,a) − V(s), and a temporal-difference loss on the labelled transitions,
Q(s_t,a_t) ≈ r(s_t,a_t,s_{t+1}) + γ (1 − terminated_t) V(s_{t+1}), ties the reward to Q (r is
the Bellman residual of Q; a time-limit truncation bootstraps like any other step).

The max over actions is a stated choice: V(s) = max over a candidate set of actions, the M
probe actions a_m (``num_probe_actions``: a grid for 1-D actions, uniform draws otherwise),
the action of a given policy π(s) (``policy_action``, e.g. the agent's actor, which tracks
the argmax where a few probes cannot in several dimensions), and the action taken at s where
the segment holds it. The same V serves both terms: V(s_t) in A includes a_t, and V(s_{t+1})
in the TD target includes a_{t+1} (except after the segment's last step, where the next
action is not in the data). Cost per preference batch: the Q network runs on about (M + 2)·N
state-action pairs for A and as many for V(s'), i.e. about 2(M + 2) times the work of the
partial-return model's N reward evaluations.

Both networks are the Flax nnx ``MLP`` of ``RewardModel``; like it, the model splits them once
into a static ``graphdef`` and a parameter ``State`` whose leaves are stacked on a leading
ensemble axis, and ``vmap``s the pure functions over it.

References:
    Knox, Hatgis-Kessell, Booth, Niekum, Stone and Allievi, "Models of human preference
    for learning reward functions", TMLR 2024 (arXiv:2206.02231).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from rewardlab._types import FragmentPairs
from rewardlab.rewards._networks import MLP


class ContinuousRegretParams(NamedTuple):
    """Parameters of a :class:`ContinuousRegretModel`; gradients are taken w.r.t. ``net``."""

    net: Any  # nnx.State of RegretNets ({"reward": MLP, "q": MLP}), every leaf stacked on a leading ensemble axis [E, ...]


class RegretNets(nnx.Module):
    """One member: the reward MLP r(s, a, s') over [s, a, s'] and the Q MLP Q(s, a) over [s, a] (ReLU)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: Sequence[int], *, rngs: nnx.Rngs) -> None:
        self.reward = MLP(2 * obs_dim + act_dim, hidden_sizes, "relu", rngs=rngs)
        self.q = MLP(obs_dim + act_dim, hidden_sizes, "relu", rngs=rngs)


class ContinuousRegretModel:
    """Reward r(s, a, s') and Q(s, a) networks of the candidate reward, for the regret model on Box envs.

    ``advantage`` gives A(s, a) = Q(s, a) − V(s) with V(s) = max(Q(s, a), max_m Q(s, a_m),
    Q(s, π(s))) over M probe actions fixed at construction (a grid for 1-D actions, uniform
    draws otherwise) and, when ``policy_action`` is given, the policy's action; so A ≤ 0 and
    regret ≥ 0. ``regret_auxiliary_loss`` is the temporal-difference loss
    mean (Q(s_t,a_t) − [r_t + γ (1 − terminated_t) sg(V(s_{t+1}))])² on the labelled
    transitions, V(s_{t+1}) including a_{t+1} inside the segment as V(s_t) includes a_t; a
    truncated step bootstraps. ``RewardTrainer`` adds it (times ``td_weight``) under
    ``PreferenceModel("regret")``: the preference loss shapes Q, the TD loss makes r its
    Bellman residual (with ``td_weight=0`` the reward network is never trained). A few random
    probes are a loose max in several action dimensions: raise ``num_probe_actions`` or give
    ``policy_action``. Observations are flat ``[N, obs_dim]``; actions ``[N, act_dim]``.
    Every method returns one row per ensemble member.

    Args:
        obs_dim: observation size.
        action_low: ``[act_dim]`` lower action bounds.
        action_high: ``[act_dim]`` upper action bounds.
        hidden_sizes: MLP hidden sizes of both networks.
        num_probe_actions: M, the probe actions of the max over actions.
        policy_action: optional pure JAX ``obs [N, obs_dim] -> acts [N, act_dim]`` whose action
            joins the max over actions (e.g. a learned policy's mean action).
        discount: γ of the TD target.
        td_weight: weight of the TD loss.
        seed: seed of the probe actions.
        ensemble_size: E, members initialised from independent keys.

    Raises:
        ValueError: bounds that are not equal ``[act_dim]`` arrays with high > low, M < 1,
            γ outside [0, 1] or E < 1.

    Example:
        >>> import jax, numpy as np
        >>> model = ContinuousRegretModel(3, np.array([-2.0]), np.array([2.0]), hidden_sizes=(8,), num_probe_actions=5)
        >>> params = model.init(jax.random.key(0))
        >>> adv = model.advantage(params, np.zeros((4, 3)), np.zeros((4, 1)), np.zeros((4, 3)), np.zeros(4, bool))
        >>> adv.shape, bool((adv <= 0).all())
        ((1, 4), True)
    """

    def __init__(
        self,
        obs_dim: int,
        action_low: Any,
        action_high: Any,
        *,
        hidden_sizes: tuple[int, ...] = (64, 64),
        num_probe_actions: int = 16,
        policy_action: Callable[[jax.Array], jax.Array] | None = None,
        discount: float = 0.99,
        td_weight: float = 1.0,
        seed: int = 0,
        ensemble_size: int = 1,
    ) -> None:
        low = np.atleast_1d(np.asarray(action_low, np.float32))
        high = np.atleast_1d(np.asarray(action_high, np.float32))
        if low.shape != high.shape or low.ndim != 1 or not np.all(high > low):
            raise ValueError(
                f"action_low/action_high: expected equal [act_dim] bounds with high > low, got {low} and {high}"
            )
        if int(num_probe_actions) < 1:
            raise ValueError(f"num_probe_actions: expected an integer >= 1, got {num_probe_actions!r}")
        if not 0.0 <= float(discount) <= 1.0:
            raise ValueError(f"discount: expected a value in [0, 1], got {discount!r}")
        if int(ensemble_size) < 1:
            raise ValueError(f"ensemble_size: expected an integer >= 1, got {ensemble_size!r}")
        if policy_action is not None and not callable(policy_action):
            raise ValueError(
                f"policy_action: expected a callable obs -> acts or None, got {type(policy_action).__name__}"
            )
        self.policy_action = policy_action
        self.obs_dim = int(obs_dim)
        self.act_dim = int(low.shape[0])
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.discount = float(discount)
        self.td_weight = float(td_weight)
        self.ensemble_size = int(ensemble_size)
        if self.act_dim == 1:
            probes = np.linspace(low, high, int(num_probe_actions), dtype=np.float32)
        else:
            probes = (
                np.random.default_rng(seed)
                .uniform(low, high, (int(num_probe_actions), self.act_dim))
                .astype(np.float32)
            )
        self.probe_actions = jnp.asarray(probes)  # [M, act_dim]
        self._graphdef = nnx.graphdef(nnx.eval_shape(lambda: self._build(nnx.Rngs(0))))
        self._init = jax.jit(self._init_core)

    def __repr__(self) -> str:
        return (
            f"ContinuousRegretModel(obs_dim={self.obs_dim}, act_dim={self.act_dim}, hidden_sizes={self.hidden_sizes}, "
            f"num_probe_actions={self.probe_actions.shape[0]}, ensemble_size={self.ensemble_size})"
        )

    def _build(self, rngs: nnx.Rngs) -> RegretNets:
        return RegretNets(self.obs_dim, self.act_dim, self.hidden_sizes, rngs=rngs)

    def _init_core(self, key: jax.Array) -> ContinuousRegretParams:
        return ContinuousRegretParams(
            jax.vmap(lambda k: nnx.state(self._build(nnx.Rngs(k))))(jax.random.split(key, self.ensemble_size))
        )

    def init(self, key: jax.Array | int) -> ContinuousRegretParams:
        """Fresh parameters: E members initialised from independent keys (an int is a seed)."""
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            key = jax.random.key(int(key))
        # The classic threefry variant, as RewardModel.init: the same parameters whatever the global setting.
        with jax.threefry_partitionable(False):
            return self._init(key)

    def _check(self, obs: Any, acts: Any) -> tuple[jax.Array, jax.Array]:
        obs = jnp.asarray(obs, jnp.float32)
        acts = jnp.asarray(acts, jnp.float32)
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"obs: expected shape [N, {self.obs_dim}], got {obs.shape}")
        if acts.shape != (obs.shape[0], self.act_dim):
            raise ValueError(f"acts: expected shape [{obs.shape[0]}, {self.act_dim}], got {acts.shape}")
        return obs, acts

    def _members(self, params: ContinuousRegretParams, fn: Any) -> jax.Array:
        """``fn(member networks)`` of every member, stacked: ``[E, ...]``."""
        return jax.vmap(lambda state: fn(nnx.merge(self._graphdef, state)))(params.net)

    def q_values(self, params: ContinuousRegretParams, obs: jax.Array, acts: jax.Array) -> jax.Array:
        """Q(s, a): ``[E, N]``."""
        inputs = jnp.concatenate([obs, acts], axis=-1)
        return self._members(params, lambda nets: nets.q(inputs))

    def state_values(self, params: ContinuousRegretParams, obs: jax.Array) -> jax.Array:
        """V(s) = max(max_m Q(s, a_m), Q(s, π(s))) over the probes and ``policy_action``: ``[E, N]``."""
        probe_q = jax.vmap(lambda a: self.q_values(params, obs, jnp.broadcast_to(a, (obs.shape[0], self.act_dim))))(
            self.probe_actions
        )
        values = jnp.max(probe_q, axis=0)
        if self.policy_action is not None:
            acts = jnp.asarray(self.policy_action(obs), jnp.float32)
            if acts.shape != (obs.shape[0], self.act_dim):
                raise ValueError(f"policy_action: expected actions [{obs.shape[0]}, {self.act_dim}], got {acts.shape}")
            values = jnp.maximum(values, self.q_values(params, obs, acts))
        return values

    def apply(self, params: ContinuousRegretParams, obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        """r(s, a, s'): ``[E, N]``."""
        del dones
        obs, acts = self._check(obs, acts)
        inputs = jnp.concatenate([obs, acts, jnp.asarray(next_obs, jnp.float32)], axis=-1)
        return self._members(params, lambda nets: nets.reward(inputs))

    def advantage(self, params: ContinuousRegretParams, obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        """A(s, a) = Q(s, a) − max(Q(s, a), V(s)): ``[E, N]``."""
        del next_obs, dones
        obs, acts = self._check(obs, acts)
        q = self.q_values(params, obs, acts)
        return q - jnp.maximum(q, self.state_values(params, obs))

    def regret_auxiliary_loss(
        self, params: ContinuousRegretParams, pairs: FragmentPairs, pair_weights: jax.Array
    ) -> jax.Array:
        """Weighted TD loss on the pairs' transitions (``pair_weights`` ``[B]``), mean over members, times ``td_weight``."""
        num_pairs, _, length = jnp.shape(pairs.dones)
        flat = lambda x: jnp.reshape(jnp.asarray(x, jnp.float32), (num_pairs * 2 * length, -1))  # noqa: E731
        obs, acts, next_obs = flat(pairs.obs), flat(pairs.acts), flat(pairs.next_obs)
        dones = jnp.reshape(jnp.asarray(pairs.dones, jnp.float32), (-1,))
        terminated = jnp.reshape(jnp.asarray(pairs.terminal(), jnp.float32), (-1,))
        rewards = self.apply(params, obs, acts, next_obs, dones)  # [E, N]
        q = self.q_values(params, obs, acts)  # [E, N]
        # V(s_{t+1}) as the advantage of step t + 1 takes it: its max includes the taken a_{t+1}
        q_next_taken = jnp.reshape(q, (-1, num_pairs, 2, length))[..., 1:]
        last = jnp.full(q_next_taken.shape[:-1] + (1,), -jnp.inf, q.dtype)  # a_{t+1} unknown after the last step
        q_next_taken = jnp.reshape(jnp.concatenate([q_next_taken, last], axis=-1), q.shape)
        q_next_taken = jnp.where(dones > 0, -jnp.inf, q_next_taken)  # an episode end: obs[t + 1] starts another
        next_values = jnp.maximum(self.state_values(params, next_obs), q_next_taken)
        target = rewards + self.discount * (1.0 - terminated) * jax.lax.stop_gradient(next_values)
        errors = jnp.reshape((q - target) ** 2, (-1, num_pairs, 2 * length)).mean(axis=-1)  # [E, B]
        weights = jnp.asarray(pair_weights, jnp.float32)
        return self.td_weight * jnp.mean(jnp.sum(weights * errors, axis=-1)) / jnp.maximum(jnp.sum(weights), 1e-12)
