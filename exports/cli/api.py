"""`payreports api ...`: serve the Report API and manage API keys."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="The Report API (FastAPI) and web app, and API keys.")


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Interface to bind."),
          port: int = typer.Option(8000, help="TCP port."),
          workers: int = typer.Option(1, help="uvicorn worker processes.")) -> None:
    """Serve the Report API (OpenAPI docs at /docs) and the web app (/)."""
    import uvicorn

    from exports import db

    db.migrate("app")
    uvicorn.run("api.app:app_factory", factory=True, host=host, port=port, workers=workers,
                log_level="info")


@app.command("create-key")
def create_key(account: str = typer.Option(..., "--account", help="Account id, e.g. acct_..."),
               name: str = typer.Option("", help="A label to recognise the key by.")) -> None:
    """Create an API key for an account and print it once (only its hash is stored)."""
    from exports import db
    from exports.requests import store

    db.migrate("app")
    secret, row = store.create_api_key(account, name)
    typer.echo(f"{row['id']}\t{secret}")
    typer.echo("Store this key now: it cannot be shown again.", err=True)


@app.command("revoke-key")
def revoke_key(key_id: str = typer.Argument(..., help="The key's id (key_...), not the secret.")) -> None:
    """Revoke an API key; requests using it get 401 from now on."""
    from exports.requests import store

    if not store.revoke_api_key(key_id):
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")
