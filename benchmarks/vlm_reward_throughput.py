"""Benchmark: VLM reward throughput — rendered frames/s and embedded frames/s, alone and inside PPO's rollout.

Rendering: the states of a random-action rollout of ``--env`` (default Hopper-v5; the frames a
reward sees) are rendered at 224×224 with shadows, reflections and MSAA off, 8 per step as a
vector env of 8 needs them: ``render_fps`` by a ``ParallelFrames`` of ``--render-workers``
processes (default 2, the cores), ``render_fps_one_process`` by 8 ``StateFrames`` renderers (one
per env, reused) in this process.

Embedding: a ViT-B/32-sized CLIP image tower (``transformers`` ``CLIPVisionModelWithProjection``,
12 layers, width 768, patch 32, 224×224, projection 512; random weights) embeds batches of
``--batch`` frames; FLOPs per frame are counted by ``torch.utils.flop_counter``.
``embed_fraction_of_peak`` = achieved GFLOP/s ÷ the GFLOP/s of a float32 2048×2048 ``torch.mm``
measured in the same run with the same threads (best-of timings taken side by side, so load
from other processes hits both alike). Goals: ``render_fps`` ≥ 150, ``embed_fraction_of_peak`` ≥ 0.4.

Inside PPO: a PPO agent on 8 envs with ``n_steps`` = ``--ppo-steps`` collects one rollout and
``RolloutRelabelCallback`` renders and embeds all its frames in one batch at the end
(``ppo_render_fps``, ``ppo_embed_fps``, ``ppo_relabel_fraction`` of the rollout's wall time).

    python -m benchmarks.vlm_reward_throughput [--env Hopper-v5] [--threads 1]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import time

from benchmarks._common import print_figures, single_threaded


def _torch_matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Hopper-v5", help="MuJoCo env whose frames are rendered")
    parser.add_argument("--num-envs", type=int, default=8, help="renderers (envs of the vector env)")
    parser.add_argument("--size", type=int, default=224, help="frame side in pixels")
    parser.add_argument("--frames", type=int, default=64, help="frames per renderer timed")
    parser.add_argument("--batch", type=int, default=32, help="frames per embedding batch")
    parser.add_argument("--repeats", type=int, default=3, help="best-of repeats of the embedding and matmul timings")
    parser.add_argument("--ppo-steps", type=int, default=16, help="PPO n_steps per env (0: skip the PPO figures)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--render-workers", type=int, default=2, help="rendering processes of render_fps")
    args = parser.parse_args()
    single_threaded()
    import numpy as np
    import torch
    import transformers
    from torch.utils.flop_counter import FlopCounterMode

    from rewardlab.vlm import ParallelFrames, StateFrames

    torch.set_num_threads(args.threads)
    figures: dict = {
        "env": args.env,
        "num_envs": args.num_envs,
        "size": args.size,
        "threads": args.threads,
        "render_workers": args.render_workers,
    }

    # Rendering: states of a random-action rollout (termination off), one frame per env per vector step.
    import gymnasium as gym

    env = gym.make(args.env)
    env.action_space.seed(0)
    env.reset(seed=0)
    states = []
    for _ in range(args.frames * args.num_envs):
        state, _, terminated, truncated, _ = env.step(env.action_space.sample())
        states.append(state)
        if terminated or truncated:
            env.reset()
    obs = np.asarray(states).reshape(args.frames, args.num_envs, -1)
    sources = [StateFrames(args.env, args.size) for _ in range(args.num_envs)]
    for source in sources:
        source.render(obs[0, :2])
    start = time.perf_counter()
    for step in obs:
        for source, row in zip(sources, step, strict=True):
            source.render_one(row)
    figures["render_fps_one_process"] = args.frames * args.num_envs / (time.perf_counter() - start)
    pool = ParallelFrames(args.env, args.size, workers=args.render_workers)
    pool.render(obs[0])
    start = time.perf_counter()
    for step in obs:
        pool.render(step)
    figures["render_fps"] = args.frames * args.num_envs / (time.perf_counter() - start)

    # Embedding: a ViT-B/32-sized image tower, random weights.
    config = transformers.CLIPVisionConfig(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        image_size=224,
        patch_size=32,
    )
    config.projection_dim = 512
    tower = transformers.CLIPVisionModelWithProjection(config).eval()
    pixels = torch.randn(args.batch, 3, 224, 224)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            tower(pixel_values=pixels[:1])
        flops_per_frame = counter.get_total_flops()
        tower(pixel_values=pixels)
        embed_times, peaks = [], []
        for _ in range(args.repeats):
            embed_times.append(_timed(lambda: tower(pixel_values=pixels)))
            peaks.append(_torch_matmul_gflops(repeats=2))
    embed_fps = args.batch / min(embed_times)
    peak = max(peaks)
    figures.update(
        embed_fps=embed_fps,
        gflops_per_frame=flops_per_frame / 1e9,
        embed_gflops=embed_fps * flops_per_frame / 1e9,
        matmul_peak_gflops=peak,
        embed_fraction_of_peak=embed_fps * flops_per_frame / 1e9 / peak,
    )

    if args.ppo_steps > 0:
        from stable_baselines3 import PPO

        from rewardlab.rl import make_task_env
        from rewardlab.vlm import ClipEmbedder, CLIPReward, RolloutRelabelCallback

        def image_fn(x: torch.Tensor) -> torch.Tensor:
            return tower(pixel_values=x).image_embeds

        def text_fn(texts: list[str]) -> torch.Tensor:
            return torch.randn(len(texts), 512, generator=torch.Generator().manual_seed(len(texts[0])))

        embedder = ClipEmbedder(image_fn, text_fn, 224, batch_size=args.batch)
        reward = CLIPReward(embedder, pool, "a robot standing", "a robot", alpha=0.5)
        timing = {"render": 0.0, "embed": 0.0}
        render, embed = reward.render, embedder.embed_images

        def timed_render(next_obs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            out = render(next_obs)
            timing["render"] += time.perf_counter() - start
            return out

        def timed_embed(frames):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            out = embed(frames)
            timing["embed"] += time.perf_counter() - start
            return out

        reward.render = timed_render  # type: ignore[method-assign]
        embedder.embed_images = timed_embed  # type: ignore[method-assign]
        venv = make_task_env(args.env, args.num_envs, 0)
        agent = PPO(
            "MlpPolicy",
            venv,
            n_steps=args.ppo_steps,
            batch_size=args.ppo_steps * args.num_envs,
            n_epochs=1,
            device="cpu",
        )
        frames = args.ppo_steps * args.num_envs
        start = time.perf_counter()
        agent.learn(frames, callback=RolloutRelabelCallback(reward))
        wall = time.perf_counter() - start
        figures.update(
            ppo_render_fps=frames / timing["render"],
            ppo_embed_fps=frames / timing["embed"],
            ppo_relabel_fraction=(timing["render"] + timing["embed"]) / wall,
        )
    pool.close()
    print_figures(figures)
    return figures


if __name__ == "__main__":
    main()
