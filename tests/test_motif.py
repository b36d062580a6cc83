"""Motif: the LLM's pairwise labels, the Bradley–Terry message rewards and the episodic-count intrinsic reward."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rewardlab.intrinsic import MessageRewards, MotifBonus, fit_message_rewards, label_message_pairs, parse_preference

GOOD, NEUTRAL = "You find a hidden passage.", "You hear the footsteps of a guard on patrol."


class _Reply:
    def __init__(self, content: str) -> None:
        self.content = content


class _OracleClient:
    """Prefers the description that mentions a hidden passage, as a hand-written oracle would."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def chat(self, messages: list[dict[str, str]], *, temperature: float = 0.0, max_tokens: int = 512) -> Any:
        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        first = prompt.split("Description 1:")[1].split("Description 2:")[0]
        return _Reply("Analysis ... Best description: " + ("1" if "hidden" in first else "2"))


def _message_bytes(*messages: str) -> np.ndarray:
    out = np.zeros((len(messages), 256), np.uint8)
    for i, m in enumerate(messages):
        out[i, : len(m)] = np.frombuffer(m.encode(), np.uint8)
    return out


def test_labels_from_a_client_and_parsing() -> None:
    client = _OracleClient()
    labels = label_message_pairs(client, [(GOOD, NEUTRAL), (NEUTRAL, GOOD)])
    assert labels == [1.0, 0.0]
    assert GOOD in client.prompts[0] and "Best description" in client.prompts[0]
    assert parse_preference("first 1, then... Best description: None") == 0.5
    with pytest.raises(ValueError, match=r"pairs\[0\]"):
        label_message_pairs(client, [(GOOD,)])  # type: ignore[list-item]


def test_bradley_terry_fit_orders_messages_and_matches_the_label_rate() -> None:
    pairs = [(GOOD, NEUTRAL)] * 4
    model = fit_message_rewards(pairs, [1.0, 1.0, 1.0, 0.0], num_steps=2000, l2=0.0)
    difference = model(GOOD) - model(NEUTRAL)
    assert difference == pytest.approx(np.log(3.0), abs=0.05)  # σ(Δr) = 3/4, the empirical preference rate
    assert model("never seen") == 0.0
    with pytest.raises(ValueError, match="labels"):
        fit_message_rewards(pairs, [None] * 4)


def test_motif_bonus_thresholds_and_divides_by_the_episodic_count() -> None:
    model = MessageRewards({GOOD: 0, NEUTRAL: 1, "bad": 2}, np.array([2.0, 0.0, -2.0], np.float32))
    bonus = MotifBonus(model, beta=3.0, threshold_quantile=0.5)
    r_hat = 2.0 / np.std([2.0, 0.0, -2.0])  # the normalised reward of GOOD; NEUTRAL (r̂ = 0) sits at the threshold
    obs = {"message": _message_bytes(GOOD, NEUTRAL)}
    first = bonus(obs, None, obs, np.array([False, True]))
    np.testing.assert_allclose(first, [r_hat, 0.0], rtol=1e-6)
    second = bonus(obs, None, obs, np.array([True, False]))
    np.testing.assert_allclose(second, [r_hat / 2**3, 0.0], rtol=1e-6)  # N_ep = 2, β = 3
    third = bonus(obs, None, obs, np.array([False, False]))
    np.testing.assert_allclose(third, [r_hat, 0.0], rtol=1e-6)  # env 0's episode ended: the count starts again
    assert bonus(
        {"message": _message_bytes("", "")}, None, {"message": _message_bytes("", "")}, np.zeros(2, bool)
    ).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="message"):
        bonus(np.zeros((2, 3)), None, np.zeros((2, 3)), np.zeros(2, bool))
