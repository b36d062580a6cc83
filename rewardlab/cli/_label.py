"""``rewardlab label serve RUN_DIR``: the human-labelling web app of a run, in the foreground."""

from __future__ import annotations

import secrets
from pathlib import Path

import typer

label_app = typer.Typer(
    help="Human preference labelling: the web app of a run.", no_args_is_help=True, add_completion=False
)


@label_app.command("serve")
def serve(
    run_dir: Path = typer.Argument(..., help="Run folder: its labelling/ store and clips (made if missing)."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; beyond loopback an access key is needed."),
    access_key: str = typer.Option(
        None, help="Key every request must carry (?key=... in the printed URL); generated when not on loopback."
    ),
) -> None:
    """Serve the labelling page of RUN_DIR until interrupted (Ctrl-C); prints the URL to open."""
    from rewardlab.labelling import is_loopback
    from rewardlab.labelling import serve as serve_app

    if not is_loopback(host) and not access_key:
        access_key = secrets.token_urlsafe(16)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    if access_key:
        url += f"?key={access_key}"
    typer.echo(f"labelling {run_dir} at {url}", err=False)
    try:
        serve_app(run_dir, host=host, port=port, access_key=access_key)
    except (ImportError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
