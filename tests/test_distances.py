"""Reward distances: hand-computed values, invariances (hypothesis), extreme inputs, numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rewardlab_envs
from rewardlab.distances import (
    dard_distance,
    epic_canonicalize,
    epic_distance,
    lp_distance,
    pearson_distance,
    starc_distance,
)

NORMS = (1, 2, "inf")


def _shape(reward, potential, discount):
    return reward + discount * potential[None, None, :] - potential[:, None, None]


def _redistribute(reward, transitions, noise):
    """Add noise with zero expectation under T(s, a, ·): an S'-redistribution of the reward."""
    return reward + noise - np.einsum("sat,sat->sa", transitions, noise)[:, :, None]


def _numpy_epic(reward_a, reward_b, discount):
    """EPIC straight from the definition, with loops, uniform D_S, D_A and coverage."""

    def canonical(r):
        num_states, num_actions, _ = r.shape
        c = np.zeros_like(r, dtype=np.float64)
        total = r.mean()
        for s in range(num_states):
            for a in range(num_actions):
                for t in range(num_states):
                    c[s, a, t] = r[s, a, t] + discount * r[t].mean() - r[s].mean() - discount * total
        return c.ravel()

    rho = np.corrcoef(canonical(np.float64(reward_a)), canonical(np.float64(reward_b)))[0, 1]
    return np.sqrt((1 - rho) / 2)


@pytest.fixture(scope="module")
def mdp():
    return rewardlab_envs.random_mdp(7, 3, seed=0, discount=0.9)


def test_epic_matches_numpy_reference(mdp):
    other = rewardlab_envs.random_mdp(7, 3, seed=1, discount=0.9).reward
    expected = _numpy_epic(np.asarray(mdp.reward), np.asarray(other), 0.9)
    assert 0.3 < expected < 0.9
    np.testing.assert_allclose(epic_distance(mdp.reward, other, 0.9), expected, atol=1e-5)


def test_epic_hand_computed_two_state():
    # R_A rewards landing in state 1, R_B rewards being in state 1: with γ = 1 they differ by
    # the potential Φ(s) = 1[s = 1], so EPIC is 0; with γ = 0 they are not equivalent.
    r_a = np.zeros((2, 1, 2), np.float32)
    r_a[:, :, 1] = 1.0
    r_b = np.zeros((2, 1, 2), np.float32)
    r_b[1] = 1.0
    assert float(epic_distance(r_a, r_b, 1.0)) == pytest.approx(0.0, abs=1e-6)
    # γ = 0: C(R) = R − E[R(s, A, S')]; C(R_A) = ±½ by s', C(R_B) = 0: one degenerate side
    assert float(epic_distance(r_a, r_b, 0.0)) == pytest.approx(np.sqrt(0.5), abs=1e-6)


def test_pearson_distance_extremes():
    x = jnp.array([1.0, -2.0, 0.5, 3.0])
    assert float(pearson_distance(x, 5.0 * x + 2.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(pearson_distance(x, -x)) == pytest.approx(1.0, abs=1e-6)
    assert float(pearson_distance(jnp.zeros(4), jnp.zeros(4))) == 0.0
    assert float(pearson_distance(jnp.zeros(4), x)) == pytest.approx(np.sqrt(0.5))
    # weights restrict the correlation to the support
    y = x.at[0].set(-100.0)
    assert float(pearson_distance(x, y, jnp.array([0.0, 1.0, 1.0, 1.0]))) == pytest.approx(0.0, abs=1e-6)
    assert float(pearson_distance(x, y)) > 0.1


def test_lp_distance_hand_computed():
    x, y = jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 1.0, 0.0])
    assert float(lp_distance(x, y, 1)) == pytest.approx(3.0)
    assert float(lp_distance(x, y, 2)) == pytest.approx(np.sqrt(5.0))
    assert float(lp_distance(x, y, "inf")) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="p: expected 1, 2 or 'inf'"):
        lp_distance(x, y, 3)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    scale=st.floats(0.01, 100.0),
    potential_scale=st.floats(0.0, 10.0),
    discount=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
)
def test_shaping_and_positive_scaling_leave_every_distance_at_zero(seed, scale, potential_scale, discount):
    mdp = rewardlab_envs.random_mdp(6, 3, seed=seed % 50, discount=discount)
    rng = np.random.default_rng(seed)
    potential = potential_scale * rng.normal(size=6).astype(np.float32)
    shaped = _shape(scale * np.asarray(mdp.reward), potential, discount)
    assert float(epic_distance(mdp.reward, shaped, discount)) < 2e-3
    assert float(dard_distance(mdp.reward, shaped, mdp.transitions, discount)) < 2e-3
    for canonicalization in ("value", "epic", "minimal"):
        for norm in NORMS:
            distance = starc_distance(mdp.reward, shaped, mdp.transitions, discount, canonicalization=canonicalization, norm=norm, metric=norm)
            assert float(distance) < 2e-3, (canonicalization, norm)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), discount=st.sampled_from([0.0, 0.9, 0.99]))
def test_negation_is_at_maximal_distance(seed, discount):
    mdp = rewardlab_envs.random_mdp(6, 3, seed=seed % 50, discount=discount)
    assert float(epic_distance(mdp.reward, -mdp.reward, discount)) == pytest.approx(1.0, abs=1e-5)
    assert float(dard_distance(mdp.reward, -mdp.reward, mdp.transitions, discount)) == pytest.approx(1.0, abs=1e-5)
    for canonicalization in ("value", "epic", "minimal"):
        for norm in NORMS:
            distance = starc_distance(mdp.reward, -mdp.reward, mdp.transitions, discount, canonicalization=canonicalization, norm=norm, metric=norm)
            assert float(distance) == pytest.approx(2.0, abs=1e-4), (canonicalization, norm)


@pytest.mark.parametrize("canonicalization", ["value", "minimal"])
def test_starc_is_zero_exactly_on_the_equivalence_class(mdp, canonicalization):
    rng = np.random.default_rng(3)
    transitions, reward = np.asarray(mdp.transitions), np.asarray(mdp.reward)
    potential = rng.normal(size=7).astype(np.float32)
    noise = rng.normal(size=reward.shape).astype(np.float32)
    equivalent = _redistribute(_shape(2.5 * reward, potential, 0.9), transitions, noise)
    assert float(starc_distance(reward, equivalent, transitions, 0.9, canonicalization=canonicalization)) < 1e-3
    # leaving the class in any direction other than shaping/redistribution gives a positive distance
    for seed in range(5):
        direction = np.random.default_rng(seed).normal(size=(7, 3)).astype(np.float32)
        outside = equivalent + 0.1 * direction[:, :, None]
        assert float(starc_distance(reward, outside, transitions, 0.9, canonicalization=canonicalization)) > 1e-2
    # negative scaling is not in the class
    assert float(starc_distance(reward, -equivalent, transitions, 0.9, canonicalization=canonicalization)) > 1.9


def test_epic_canonicalisation_does_not_quotient_redistribution(mdp):
    rng = np.random.default_rng(4)
    redistributed = _redistribute(np.asarray(mdp.reward), np.asarray(mdp.transitions), rng.normal(size=mdp.reward.shape).astype(np.float32))
    assert float(starc_distance(mdp.reward, redistributed, mdp.transitions, 0.9, canonicalization="value")) < 1e-3
    assert float(starc_distance(mdp.reward, redistributed, mdp.transitions, 0.9, canonicalization="epic")) > 0.1
    assert float(epic_distance(mdp.reward, redistributed, 0.9)) > 0.1


def test_trivial_rewards_have_zero_starc_distance(mdp):
    constant = np.full(mdp.reward.shape, 3.0, np.float32)
    for canonicalization in ("value", "epic", "minimal"):
        assert float(starc_distance(constant, np.zeros_like(constant), mdp.transitions, 0.9, canonicalization=canonicalization)) == 0.0
        # one trivial reward and one non-trivial one: the distance is the unit norm of the other
        assert float(starc_distance(constant, mdp.reward, mdp.transitions, 0.9, canonicalization=canonicalization)) == pytest.approx(1.0, abs=1e-5)
    assert float(epic_distance(constant, np.zeros_like(constant), 0.9)) == 0.0


def test_state_and_state_action_rewards_broadcast(mdp):
    state_reward = np.arange(7, dtype=np.float32)
    full = np.broadcast_to(state_reward[:, None, None], mdp.reward.shape)
    assert float(epic_distance(state_reward, mdp.reward, 0.9, transitions=mdp.transitions)) == pytest.approx(
        float(epic_distance(full, mdp.reward, 0.9)), abs=1e-6
    )
    assert float(starc_distance(state_reward, mdp.reward, mdp.transitions, 0.9)) == pytest.approx(
        float(starc_distance(full, mdp.reward, mdp.transitions, 0.9)), abs=1e-6
    )
    state_action = np.asarray(mdp.reward).mean(-1)
    assert float(epic_distance(state_action, state_action * 2.0, 0.9)) < 1e-3


def test_delivery_true_reward_versus_perturbed_weights():
    true_mdp = rewardlab_envs.delivery_mdp(discount=0.9)
    weights = np.asarray(true_mdp.true_weights).copy()
    close = true_mdp.features @ (weights * 1.05)
    flipped = true_mdp.features @ (weights * np.array([1, -1, 1, 1, 1, 1], np.float32))  # goal is bad
    for distance in (
        lambda r: epic_distance(true_mdp.reward, r, 0.9),
        lambda r: starc_distance(true_mdp.reward, r, true_mdp.transitions, 0.9),
    ):
        assert float(distance(close)) < 0.05
        assert float(distance(flipped)) > 0.2


def test_jit_and_vmap_agree_with_eager(mdp):
    rewards = jnp.stack([mdp.reward, -mdp.reward, 2.0 * mdp.reward, rewardlab_envs.random_mdp(7, 3, seed=5).reward])
    eager = [float(starc_distance(mdp.reward, r, mdp.transitions, 0.9)) for r in rewards]
    batched = jax.jit(jax.vmap(lambda r: starc_distance(mdp.reward, r, mdp.transitions, 0.9)))(rewards)
    np.testing.assert_allclose(batched, eager, atol=1e-5)
    eager_epic = [float(epic_distance(mdp.reward, r, 0.9)) for r in rewards]
    np.testing.assert_allclose(jax.vmap(lambda r: epic_distance(mdp.reward, r, 0.9))(rewards), eager_epic, atol=1e-5)


def test_epic_canonicalisation_is_linear_and_idempotent(mdp):
    uniform_s, uniform_a = jnp.ones(7) / 7, jnp.ones(3) / 3
    c = epic_canonicalize(mdp.reward, 0.9, uniform_s, uniform_a)
    np.testing.assert_allclose(epic_canonicalize(c, 0.9, uniform_s, uniform_a), c, atol=1e-5)


def test_bad_inputs_raise_value_errors(mdp):
    with pytest.raises(ValueError, match="reward_b: expected the shape of reward_a"):
        epic_distance(mdp.reward, np.zeros((7, 2, 7)), 0.9)
    with pytest.raises(ValueError, match="canonicalization: expected one of"):
        starc_distance(mdp.reward, mdp.reward, mdp.transitions, 0.9, canonicalization="dard")
    with pytest.raises(ValueError, match="norm: expected 1, 2 or 'inf'"):
        starc_distance(mdp.reward, mdp.reward, mdp.transitions, 0.9, norm=3)
    with pytest.raises(ValueError, match="state_dist: expected shape"):
        epic_distance(mdp.reward, mdp.reward, 0.9, state_dist=np.ones(3))
    with pytest.raises(ValueError, match="policy: expected shape"):
        starc_distance(mdp.reward, mdp.reward, mdp.transitions, 0.9, policy=np.ones((7, 2)))
    with pytest.raises(ValueError, match="needs transitions or action_dist"):
        epic_distance(np.ones(7), np.ones(7), 0.9)
