"""Use rewardlab's reward wrapper in your own gymnasium + SB3 pipeline.

Learns a Pendulum reward from 40 oracle preferences on random-policy fragments,
then trains PPO briefly on it through the SB3 reward wrapper. Run:

    python docs/examples/own_pipeline.py
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import jax
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from rewardlab.preferences import PairScorer, TransitionBuffer, label, make_teacher, reward_correlation, train_reward
from rewardlab.rewards import RewardModel, RewardNetConfig, as_reward_fn
from rewardlab.wrappers import RewardVecEnvWrapper


def main(total_timesteps: int = 2048, labels: int = 40, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    venv = make_vec_env("Pendulum-v1", n_envs=2, seed=seed)

    # 1. Experience from a random policy, kept per env so fragments stay inside episodes.
    buffer = TransitionBuffer(capacity_steps=2000, num_envs=venv.num_envs)
    obs = venv.reset()
    for _ in range(600):
        acts = np.stack([venv.action_space.sample() for _ in range(venv.num_envs)])
        next_obs, rews, dones, infos = venv.step(acts)
        s_next = next_obs.copy()
        for i, done in enumerate(dones):
            if done:
                s_next[i] = infos[i]["terminal_observation"]
        buffer.add(obs, acts, s_next, dones, rews)
        obs = next_obs

    # 2. Preferences from a simulated teacher, and a reward model trained on them.
    prefs = label(buffer.sample_pairs(labels, 25, rng), make_teacher("oracle"), rng)
    model = RewardModel(
        RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(64, 64)), venv.observation_space, venv.action_space
    )
    params, _, metrics = train_reward(
        model, model.init(jax.random.key(seed)), None, prefs, jax.random.key(seed), epochs=100, batch_size=32
    )

    # 3. The learned reward replaces the env's; the true reward stays in infos[i]["true_reward"].
    wrapped = RewardVecEnvWrapper(venv, as_reward_fn(model, params), mode="replace")
    PPO("MlpPolicy", wrapped, n_steps=256, seed=seed, device="cpu").learn(total_timesteps)
    heldout = buffer.sample_pairs(64, 25, rng)
    return {"train_accuracy": float(metrics["accuracy"][-1]), **reward_correlation(PairScorer(model), params, heldout)}


if __name__ == "__main__":
    print(main())
