"""Slow NumPy reference of finite-horizon MCE IRL: explicit loops, float64."""

from __future__ import annotations

import numpy as np


def numpy_mce_occupancy_gradient(
    transitions: np.ndarray,
    reward: np.ndarray,
    initial_state_dist: np.ndarray,
    discount: float,
    horizon: int,
    demo_occupancy: np.ndarray,
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Soft VI, forward occupancy and the MCE gradient w.r.t. a state-action reward, by explicit loops.

    Q_t(s,a) = r(s,a) + γ Σ_s' T(s,a,s') V_{t+1}(s'), V_t = τ log Σ_a exp(Q_t/τ), π_t = exp((Q_t − V_t)/τ);
    D = Σ_t γᵗ d_t(s) π_t(a|s) with d_{t+1}(s') = Σ d_t(s) π_t(a|s) T(s,a,s').

    Args:
        transitions: ``[S, A, S']``. reward: ``[S, A]``. initial_state_dist: ``[S]``.
        demo_occupancy: ``[S, A]``.

    Returns:
        ``(occupancy [S, A], gradient [S, A] = D_π − D_demo, loss = E_d0 V_0 − ⟨D_demo, r⟩)``.
    """
    transitions = np.asarray(transitions, np.float64)
    reward = np.asarray(reward, np.float64)
    num_states, num_actions = reward.shape
    values = np.zeros(num_states)
    policies: dict[int, np.ndarray] = {}  # t -> π_t [S, A]
    initial_values = values
    for t in reversed(range(horizon)):
        q = np.zeros((num_states, num_actions))
        for s in range(num_states):
            for a in range(num_actions):
                q[s, a] = reward[s, a] + discount * sum(transitions[s, a, s2] * values[s2] for s2 in range(num_states))
        new_values = np.zeros(num_states)
        policy = np.zeros((num_states, num_actions))
        for s in range(num_states):
            top = q[s].max()
            new_values[s] = top + temperature * np.log(np.sum(np.exp((q[s] - top) / temperature)))
            policy[s] = np.exp((q[s] - new_values[s]) / temperature)
        values = new_values
        policies[t] = policy
        initial_values = values
    state_dist = np.asarray(initial_state_dist, np.float64)
    occupancy = np.zeros((num_states, num_actions))
    for t in range(horizon):
        next_dist = np.zeros(num_states)
        for s in range(num_states):
            for a in range(num_actions):
                visit = state_dist[s] * policies[t][s, a]
                occupancy[s, a] += discount**t * visit
                next_dist += visit * transitions[s, a]
        state_dist = next_dist
    loss = float(np.dot(initial_state_dist, initial_values) - np.sum(demo_occupancy * reward))
    return occupancy, occupancy - np.asarray(demo_occupancy, np.float64), loss
