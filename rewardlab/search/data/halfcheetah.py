import numpy as np


def compute_reward(obs, act, next_obs, terminated):
    # HalfCheetah-v5: obs[:, 8] = forward velocity of the torso (m/s); act = 6 joint torques in [-1, 1].
    forward = next_obs[:, 8]
    control = -0.1 * np.sum(np.square(act), axis=1)
    upright = -0.5 * np.square(next_obs[:, 1])
    reward = forward + control + upright
    return reward, {"forward": forward, "control": control, "upright": upright}
