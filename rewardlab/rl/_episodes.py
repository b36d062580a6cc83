"""``EpisodeReturns``: the true return of every finished episode while an SB3 agent trains."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback


class EpisodeReturns(BaseCallback):
    """Records each finished episode's return and the timestep it ended at, from SB3's ``Monitor``.

    ``rewardlab.rl.make_task_env`` (SB3's ``make_vec_env``) puts a ``Monitor`` directly on every
    env, below any reward wrapper, so ``info["episode"]["r"]`` is the environment's own (true)
    return even while the agent trains on a learned or shaped reward.

    Attributes:
        timesteps: ``num_timesteps`` at each episode end.
        returns: the episode's return, in the same order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.timesteps: list[int] = []
        self.returns: list[float] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.timesteps.append(self.num_timesteps)
                self.returns.append(float(info["episode"]["r"]))
        return True
