"""The environment as the prompt describes it, and the expert reward examples shipped with the package."""

from __future__ import annotations

from importlib import resources

from rewardlab.llm import describe_env
from rewardlab.rl import make_env

# What each index means, as the envs' own sources define them (Eureka and Text2Reward give the
# model a compact form of the env's code; these are its reward-relevant lines in words).
ENV_NOTES = {
    "Pendulum-v1": (
        "obs[:, 0] = cos(theta), obs[:, 1] = sin(theta), obs[:, 2] = angular velocity theta_dot in [-8, 8]; "
        "theta = 0 is upright, theta = pi hangs down. act[:, 0] = torque in [-2, 2]. Episodes last 200 steps "
        "and never terminate early. The env's own reward is -(theta^2 + 0.1 theta_dot^2 + 0.001 torque^2), "
        "theta normalised to [-pi, pi]."
    ),
    "HalfCheetah-v5": (
        "obs[:, 0] = z of the front tip (rootz), obs[:, 1] = torso angle (rooty), obs[:, 2:8] = the six joint "
        "angles, obs[:, 8] = forward velocity of the torso (m/s), obs[:, 9] = its vertical velocity, "
        "obs[:, 10] = its angular velocity, obs[:, 11:17] = the joint angular velocities. act = six joint "
        "torques in [-1, 1]. Episodes last 1000 steps and never terminate early."
    ),
}

# Expert rewards written to the contract, for few-shot prompts (files in rewardlab/search/data/).
EXPERT_EXAMPLES = {"Pendulum-v1": "pendulum.py", "HalfCheetah-v5": "halfcheetah.py"}


def env_context(env_id: str, notes: str | None = None, source: bool = True) -> str:
    """The prompt's environment section: ids, observation and action layouts, what the indices mean, code.

    Args:
        env_id: a gymnasium id (``rewardlab.rl.make_env``).
        notes: the indices' meaning; None takes ``ENV_NOTES`` where the env is listed.
        source: append the env's observation code without its reward (``rewardlab.llm.env_source``).

    Example:
        >>> print(env_context("Pendulum-v1").splitlines()[0])
        gymnasium Pendulum-v1.
    """
    env = make_env(env_id)
    try:
        return describe_env(env, ENV_NOTES.get(env_id, "") if notes is None else notes, source=source)
    finally:
        env.close()


def expert_example(env_id: str) -> str:
    """The shipped expert reward for ``env_id`` (code written to the contract).

    Raises:
        ValueError: no example ships for ``env_id``.

    Example:
        >>> "def compute_reward(obs, act, next_obs, terminated):" in expert_example("Pendulum-v1")
        True
    """
    if env_id not in EXPERT_EXAMPLES:
        raise ValueError(f"env_id: expected one of {sorted(EXPERT_EXAMPLES)} (shipped examples), got {env_id!r}")
    return resources.files("rewardlab.search").joinpath("data").joinpath(EXPERT_EXAMPLES[env_id]).read_text()
