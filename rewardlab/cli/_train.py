"""``rewardlab train``: PPO on a MiniHack/NLE env with an intrinsic reward (Motif, ONI or an exploration bonus)."""

from __future__ import annotations

from pathlib import Path

import typer


def train(
    env_id: str = typer.Option("MiniHack-Room-5x5-v0", "--env", help="MiniHack/NLE id, or any gymnasium id."),
    intrinsic: str = typer.Option("oni", help="Intrinsic reward: none, counts, rnd, e3b, motif or oni."),
    total_timesteps: int = typer.Option(20_000, min=1, help="PPO env steps."),
    num_envs: int = typer.Option(4, min=1, help="Envs stepped together."),
    n_steps: int = typer.Option(128, min=1, help="PPO rollout length per env."),
    checkpoint_every: int = typer.Option(4096, min=1, help="Env steps between checkpoints in the run folder."),
    weight: float = typer.Option(0.1, help="c in r = r_ext + c·b."),
    reward_model: str = typer.Option("hashing", help="ONI's reward model: hashing, classification or ranking."),
    both_orders: bool = typer.Option(
        False, "--both-orders", help="Motif: ask each pair in both orders and average, against position bias."
    ),
    base_url: str = typer.Option(
        None, help="OpenAI-compatible endpoint for Motif/ONI (default: $REWARDLAB_LLM_BASE_URL, else the local model)."
    ),
    model: str = typer.Option(None, help="Model name at --base-url."),
    seed: int = typer.Option(0, help="Seed of the agent, the envs and Motif's pairs."),
    out: Path = typer.Option(Path("runs"), help="Parent folder of the run folder."),
    name: str = typer.Option(
        None, help="Run folder name (default: <env>-<intrinsic>-seed<seed>); an existing run resumes."
    ),
) -> None:
    """Train PPO with an intrinsic reward; a run folder that exists resumes with its checkpoint and label cache."""
    import logging
    import os

    from experiments.nethack_intrinsic import Args, is_nethack, main
    from rewardlab._io import check_folder
    from rewardlab.cli._common import check_env_id, fail, one_line_errors
    from rewardlab.llm import BASE_URL_ENV, LLMError
    from rewardlab.sweeps import RunLogger

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("rewardlab").setLevel(logging.INFO)  # the annotator's state and resumes, not HTTP requests
    folder = Path(out) / (name or f"{env_id.replace('/', '_')}-{intrinsic}-seed{seed}")
    with one_line_errors():
        args = Args(
            env_id=env_id,
            intrinsic=intrinsic,  # type: ignore[arg-type]  # Args checks the choices
            total_timesteps=total_timesteps,
            num_envs=num_envs,
            n_steps=n_steps,
            checkpoint_every=checkpoint_every,
            weight=weight,
            reward_model=reward_model,  # type: ignore[arg-type]
            both_orders=both_orders,
            base_url=base_url or os.environ.get(BASE_URL_ENV) or None,
            model=model,
            seed=seed,
            run_dir=str(folder),
        )
        if both_orders and intrinsic != "motif":
            raise ValueError(f"both_orders: --both-orders asks Motif's pairs both ways; --intrinsic is {intrinsic!r}")
        if not is_nethack(env_id):
            check_env_id(env_id)
        check_folder(out, "out")
    with one_line_errors(created=folder):
        try:
            logger = RunLogger(folder, tensorboard=False)
            try:
                summary = main(args, logger)
            finally:
                logger.close()
        except LLMError as error:
            fail(f"intrinsic: {intrinsic!r} needs a language model: {error}", 1)
    typer.echo(
        f"{env_id} + {intrinsic}: extrinsic return {summary['return']:.3f} over the last episodes, "
        f"{summary['episodes']} episodes, {summary['env_steps']} env steps, {summary['steps_per_s']:.0f} steps/s"
    )
    if "oni_labels" in summary:
        typer.echo(
            f"ONI: {summary['oni_labels']:.0f} labels ({folder / 'labels.sqlite'}), "
            f"label hit rate {summary['oni_label_hit_rate']:.3f}"
        )
        if summary.get("annotator_error"):
            typer.echo(f"warning: the annotator died ({summary['annotator_error']}); unlabelled messages got reward 0")
    typer.echo(f"run folder: {folder} (summary.json, checkpoint.zip, bonus_state.rlab, metrics.sqlite)")
