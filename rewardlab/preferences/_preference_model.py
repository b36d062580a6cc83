"""The preference model: how a choice between two segments depends on the reward, as one value.

A segment σ gets a score s(σ) from the reward (model) being learned, and the teacher's
label y = P(σ¹ ≻ σ²) is modelled as

    P(σ¹ ≻ σ²) = logistic((s(σ¹) − s(σ²)) / τ),        P' = ε/2 + (1 − ε) P,

with the score chosen by ``name``:

* ``"partial_return"``: s(σ) = Σ_t r_t (Christiano et al. 2017);
* ``"discounted_return"``: s(σ) = Σ_{t=0}^{L−1} γ^{L−1−t} r_t, the return of a myopic teacher
  (B-Pref's ``myopic``: the discount runs back from the segment's end, recent steps weigh more);
* ``"regret"``: s(σ) = −regret(σ) = Σ_t A_r(s_t, a_t), the optimal advantage of the candidate
  reward (Knox et al. 2024; the reward model needs ``advantage``).

τ is the ``temperature`` (small τ: nearly deterministic choices; the teachers' ``rationality``
β multiplies instead, P = logistic(β Δ), so β = 1/τ), γ the in-segment ``discount`` and ε the
``label_noise`` (the probability that a label is a coin flip). ``PreferenceModel`` holds the
four; every function and class that scores, fits or trains under a preference model takes one
(``preference_model=PreferenceModel(...)``). It is frozen and hashable, so it can be a static
argument of ``jax.jit``.

References:
    Christiano et al., "Deep reinforcement learning from human preferences", NeurIPS 2017.
    Knox et al., "Models of human preference for learning reward functions", TMLR 2024.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

PREFERENCE_MODELS = ("partial_return", "discounted_return", "regret")
"""The scores a ``PreferenceModel`` may use: partial return, discounted return, regret."""
_DEFAULT_DISCOUNT = {"partial_return": 1.0, "discounted_return": 0.99, "regret": 1.0}


@dataclasses.dataclass(frozen=True)
class PreferenceModel:
    """Segment score, temperature, in-segment discount and label noise of the Bradley–Terry model.

    P'(σ¹ ≻ σ²) = ε/2 + (1 − ε)·logistic((s(σ¹) − s(σ²)) / τ), s from ``name`` (see the module).
    ``discount`` None becomes the model's default (0.99 for ``discounted_return``, else 1), so
    two models that mean the same compare (and hash) equal.

    Raises:
        ValueError: an unknown ``name``; ``temperature`` ≤ 0; ``label_noise`` outside [0, 1); a
            ``discount`` other than 1 for the models that sum undiscounted terms
            (``partial_return``, ``regret``) or outside (0, 1].

    Example:
        >>> PreferenceModel()
        PreferenceModel(name='partial_return', temperature=1.0, discount=1.0, label_noise=0.0)
        >>> PreferenceModel("discounted_return").discount
        0.99
        >>> PreferenceModel("partial_return", discount=None) == PreferenceModel(discount=1.0)
        True
        >>> PreferenceModel(temperature=0.0)
        Traceback (most recent call last):
        ...
        ValueError: temperature: expected a temperature > 0, got 0.0
    """

    name: Literal["partial_return", "discounted_return", "regret"] = (
        "partial_return"  # segment score s(σ): Σ r_t, Σ γ^t r_t or −regret(σ)
    )
    temperature: float = 1.0  # τ > 0 of logistic((s¹ − s²)/τ); small τ: nearly deterministic choices
    discount: float | None = None  # in-segment γ ∈ (0, 1]; None: the model's default (0.99 discounted_return, else 1.0)
    label_noise: float = 0.0  # ε ∈ [0, 1): probability that a label is replaced by a coin flip

    def __post_init__(self) -> None:
        if self.name not in PREFERENCE_MODELS:
            raise ValueError(f"name: expected one of {PREFERENCE_MODELS}, got {self.name!r}")
        if not float(self.temperature) > 0:
            raise ValueError(f"temperature: expected a temperature > 0, got {self.temperature!r}")
        if not 0.0 <= float(self.label_noise) < 1.0:
            raise ValueError(f"label_noise: expected a value in [0, 1), got {self.label_noise!r}")
        if self.discount is None:
            discount = _DEFAULT_DISCOUNT[self.name]
        else:
            discount = float(self.discount)
            if self.name in ("partial_return", "regret") and discount != 1.0:
                raise ValueError(
                    f"discount: the {self.name} model sums undiscounted terms (discount 1.0), got {discount!r}; "
                    "use name='discounted_return' for an in-segment discount"
                )
            if not 0.0 < discount <= 1.0:
                raise ValueError(f"discount: expected a value in (0, 1], got {discount!r}")
        object.__setattr__(self, "temperature", float(self.temperature))
        object.__setattr__(self, "label_noise", float(self.label_noise))
        object.__setattr__(self, "discount", discount)


def check_preference_model(value: Any, name: str = "preference_model") -> PreferenceModel:
    """``value`` if it is a :class:`PreferenceModel`; a ValueError naming ``name`` otherwise.

    Example:
        >>> check_preference_model("regret")
        Traceback (most recent call last):
        ...
        ValueError: preference_model: expected a PreferenceModel, e.g. PreferenceModel('regret'), got 'regret' (str)
    """
    if not isinstance(value, PreferenceModel):
        example = (
            f"PreferenceModel({value!r})"
            if isinstance(value, str) and value in PREFERENCE_MODELS
            else "PreferenceModel()"
        )
        raise ValueError(f"{name}: expected a PreferenceModel, e.g. {example}, got {value!r} ({type(value).__name__})")
    return value
