"""``rewardlab eureka``: Eureka's reward-code search from a task text, offline with the local model by default."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer


def eureka(
    env: str = typer.Option("Pendulum-v1", "--env", help="Gymnasium environment id."),
    task: str = typer.Option(..., "--task", help="What the agent should do, in words."),
    iterations: int = typer.Option(3, min=1, help="Generate-train-reflect rounds (N)."),
    candidates: int = typer.Option(4, min=1, help="Reward functions asked for per iteration (K)."),
    total_timesteps: int = typer.Option(20_000, min=1, help="Training steps per candidate."),
    algo: str = typer.Option("ppo", help="ppo or sac."),
    eval_episodes: int = typer.Option(5, min=1, help="Episodes of the true-return fitness."),
    workers: int = typer.Option(1, min=0, help="Processes training candidates at once (0: one per core)."),
    base_url: str = typer.Option(
        None, help="An OpenAI-compatible endpoint; default: REWARDLAB_LLM_BASE_URL, else a local server started here."
    ),
    model: str = typer.Option(None, help="Model name sent to the endpoint (default: REWARDLAB_LLM_MODEL)."),
    constrained: bool = typer.Option(
        True,
        "--constrained/--free",
        help="Grammar-constrained JSON replies (the contract's header fixed), or free text.",
    ),
    temperature: float = typer.Option(0.7, min=0.0, help="Sampling temperature."),
    max_tokens: int = typer.Option(400, min=1, help="Most tokens per reply."),
    seed: int = typer.Option(0, help="Seed of the sampling, the agents and the evaluation."),
    out_dir: Path = typer.Option(Path("runs"), help="Parent folder of the run folder."),
    run_name: str = typer.Option("", help="Run folder name (default: eureka-<env>-seed<seed>)."),
) -> None:
    """Search reward code for TASK with Eureka; the run folder keeps every prompt, reply, check and fitness."""
    import os

    from rich.console import Console

    from rewardlab.cli._common import check_env_id, fail
    from rewardlab.llm import BASE_URL_ENV, ChatClient, EndpointUnreachableError, LLMError, LocalServer
    from rewardlab.search import GenerationConfig, SearchConfig, TrainConfig
    from rewardlab.search import eureka as run_eureka

    try:
        check_env_id(env)
        config = SearchConfig(
            iterations=iterations,
            candidates=candidates,
            generation=GenerationConfig(temperature=temperature, max_tokens=max_tokens, constrained=constrained),
            training=TrainConfig(algo=algo, total_timesteps=total_timesteps, eval_episodes=eval_episodes, seed=seed),
            workers=workers,
            seed=seed,
        )
    except ValueError as error:
        fail(str(error))
    if not task.strip():
        fail(f"task: expected a description of what the agent should do, got {task!r}")
    run_dir = out_dir / (run_name or f"eureka-{env}-seed{seed}")
    console = Console()
    endpoint = base_url or os.environ.get(BASE_URL_ENV)
    with contextlib.ExitStack() as stack:
        if endpoint:
            client = ChatClient(base_url=endpoint, model=model)
        else:
            console.print("no endpoint given: starting the local server (SmolLM2-135M-Instruct)")
            try:
                server = stack.enter_context(LocalServer())
            except (ImportError, ValueError, LLMError) as error:
                fail(str(error), 1)
            client = ChatClient(base_url=server.base_url, model=model) if model else server.client()
        try:
            result = run_eureka(task, env, client, run_dir, config, log=console.print)
        except EndpointUnreachableError as error:
            fail(str(error), 1)
        except ValueError as error:
            fail(str(error))
    best = (
        "none trained" if result.best_code is None else f"{result.best_fitness:.1f} (iteration {result.best_iteration})"
    )
    console.print(f"best true return: {best} | tokens {client.usage.completion_tokens}")
    console.print(f"run folder: {run_dir} (search.json, iterations/, summary.json, best_reward.json)")
