"""rewardlab_envs: environments with tabular access and named reward factors.

* Knox et al.'s delivery gridworld (``DeliveryGridworld``, registered as
  ``rewardlab/Delivery-v0``), its exact :class:`TabularMDP` and random variants;
  generic random MDPs (:func:`random_mdp`).
* Named reward factors (``info["reward_factors"]`` + :class:`FactorSpec`) for
  Pendulum, MountainCarContinuous and MuJoCo locomotion envs, fixed-horizon episodes
  and fast offscreen MuJoCo rendering, all through :func:`make`.
* NLE and MiniHack tasks with a compact glyph/stats/message observation, the message text in
  ``info["message"]`` and tty rendering (:func:`make_nethack`, ``rewardlab/MiniHack-…`` ids).

Importing the package registers its gymnasium envs.
"""

from ._control import ControlTask, MountainCarFunctional, cart_pole_task, mountain_car_task
from ._delivery import (
    ACTION_NAMES,
    CELL_CODES,
    DEFAULT_BOARD,
    DEFAULT_WEIGHT_CHOICES,
    FEATURE_NAMES,
    TRUE_WEIGHTS,
    DeliveryGridworld,
    DeliveryModel,
    DeliveryTask,
    delivery_factor_spec,
    delivery_mdp,
    delivery_model,
    parse_board,
    random_delivery_mdp,
    random_delivery_task,
)
from ._detour import DETOUR_BOARD, DETOUR_START, DetourTask, detour_gridworld
from ._dynamics import ChangedDynamics
from ._factors import FACTOR_ENV_IDS, FixedHorizon, RewardFactors, factor_spec, make
from ._nethack import (
    MAX_GLYPH,
    NETHACK_ENV_IDS,
    NetHackObservation,
    crop_glyphs,
    decode_message,
    game_seeds,
    make_nethack,
    register_nethack_envs,
    tty_rgb,
    tty_text,
)
from ._registration import DELIVERY_ID, register_envs
from ._render import configure_fast_rendering, measure_render_fps
from ._spec import FactorSpec
from ._tabular import FeatureNames, TabularMDP, random_mdp, validate_tabular_mdp

register_envs()
register_nethack_envs()

__all__ = [
    "ACTION_NAMES",
    "CELL_CODES",
    "DEFAULT_BOARD",
    "DEFAULT_WEIGHT_CHOICES",
    "DELIVERY_ID",
    "DETOUR_BOARD",
    "DETOUR_START",
    "FACTOR_ENV_IDS",
    "FEATURE_NAMES",
    "MAX_GLYPH",
    "NETHACK_ENV_IDS",
    "TRUE_WEIGHTS",
    "ChangedDynamics",
    "ControlTask",
    "DeliveryGridworld",
    "DeliveryModel",
    "DeliveryTask",
    "DetourTask",
    "FactorSpec",
    "FeatureNames",
    "FixedHorizon",
    "MountainCarFunctional",
    "NetHackObservation",
    "RewardFactors",
    "TabularMDP",
    "cart_pole_task",
    "configure_fast_rendering",
    "crop_glyphs",
    "decode_message",
    "delivery_factor_spec",
    "delivery_mdp",
    "delivery_model",
    "detour_gridworld",
    "factor_spec",
    "game_seeds",
    "make",
    "make_nethack",
    "measure_render_fps",
    "mountain_car_task",
    "parse_board",
    "random_delivery_mdp",
    "random_delivery_task",
    "random_mdp",
    "register_envs",
    "register_nethack_envs",
    "tty_rgb",
    "tty_text",
    "validate_tabular_mdp",
]
