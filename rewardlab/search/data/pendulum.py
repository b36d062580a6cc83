import numpy as np


def compute_reward(obs, act, next_obs, terminated):
    # Pendulum-v1: obs = [cos(theta), sin(theta), theta_dot]; theta = 0 is upright; act = [torque in [-2, 2]].
    theta = np.arctan2(obs[:, 1], obs[:, 0])
    angle = -np.square(theta)
    velocity = -0.1 * np.square(obs[:, 2])
    effort = -0.001 * np.square(act[:, 0])
    reward = angle + velocity + effort
    return reward, {"angle": angle, "velocity": velocity, "effort": effort}
