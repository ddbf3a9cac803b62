"""`payreports users ...`: people who sign in to the web app (create, list, set a password,
change a role, disable and enable). Changes made here are recorded as made by "cli"."""

from __future__ import annotations

import secrets

import typer

from exports.errors import InvalidParameter

app = typer.Typer(no_args_is_help=True, help="Web app users: create, list, reset passwords, change roles, disable.")


@app.command("create")
def create(account: str = typer.Option(..., "--account", help="Account id, e.g. acct_..."),
           email: str = typer.Option(..., "--email", help="Their sign-in email."),
           role: str = typer.Option("analyst", "--role",
                                    help="admin (users, keys, webhooks, schedules), analyst "
                                         "(requests and downloads) or viewer (downloads)."),
           password: str = typer.Option("", "--password", envvar="PAYREPORTS_NEW_USER_PASSWORD",
                                        help="Initial password; generated and printed when omitted.")) -> None:
    """Create a user of an account."""
    from exports import db, users

    db.migrate("app")
    generated = not password
    password = password or secrets.token_urlsafe(12)
    try:
        user = users.create_user(account, email, role, password, created_by="cli")
    except InvalidParameter as exc:
        typer.echo(f"{exc.param}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{user.id}\t{user.email}\t{user.role}\t{user.account_id}")
    if generated:
        typer.echo(f"password: {password}  (shown once; they can be given a new one with "
                   "`payreports users set-password`)", err=True)


@app.command("list")
def list_users(account: str = typer.Option(..., "--account", help="Account id.")) -> None:
    """The account's users."""
    from exports import users

    for row in users.list_users(account):
        state = f"disabled {row['disabled_at']:%Y-%m-%d}" if row["disabled_at"] else "active"
        typer.echo(f"{row['id']}\t{row['email']}\t{row['role']}\t{state}\t"
                   f"last sign-in {row['last_sign_in_at'] or 'never'}")


@app.command("set-password")
def set_password(email: str = typer.Option(..., "--email"),
                 password: str = typer.Option(..., "--password", prompt=True, hide_input=True,
                                              confirmation_prompt=True,
                                              envvar="PAYREPORTS_NEW_USER_PASSWORD")) -> None:
    """Give a user a new password (signs out their sessions)."""
    from exports import users

    try:
        changed = users.set_password(email, password)
    except InvalidParameter as exc:
        typer.echo(f"{exc.param}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    if not changed:
        typer.echo(f"no user {email}", err=True)
        raise typer.Exit(1)
    typer.echo(f"password changed for {email}")


def _change(email: str, apply) -> None:
    from exports import db, users

    db.migrate("app")
    try:
        row = users.find_user_by_email(email)
        changed = apply(users, row) if row else None
    except InvalidParameter as exc:
        typer.echo(f"{exc.param}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    if changed is None:
        typer.echo(f"no user {email}", err=True)
        raise typer.Exit(1)
    state = "disabled" if changed["disabled_at"] else "active"
    typer.echo(f"{changed['id']}\t{changed['email']}\t{changed['role']}\t{state}")


@app.command("set-role")
def set_role(email: str = typer.Option(..., "--email"),
             role: str = typer.Option(..., "--role", help="admin, analyst or viewer.")) -> None:
    """Give a user another role (the account keeps at least one active admin)."""
    _change(email, lambda users, row: users.change_role(row["account_id"], row["id"], role,
                                                        changed_by="cli"))


@app.command("disable")
def disable(email: str = typer.Option(..., "--email")) -> None:
    """Disable a user: their sessions end at once and sign-in is refused until enabled."""
    _change(email, lambda users, row: users.set_disabled(row["account_id"], row["id"], True,
                                                         changed_by="cli"))


@app.command("enable")
def enable(email: str = typer.Option(..., "--email")) -> None:
    """Let a disabled user sign in again."""
    _change(email, lambda users, row: users.set_disabled(row["account_id"], row["id"], False,
                                                         changed_by="cli"))


def print_demo_next_steps(console, settings, account_id: str | None) -> None:
    """The end of `payreports demo`: what was made, where, and how to open the app and Dagster."""
    from exports import users

    console.print()
    console.print(f"[bold]Made[/bold]: a demo payment platform, replicated into the warehouse with its "
                  f"marts built. State (Postgres, warehouse, files, Dagster) lives in {settings.state_dir}")
    if account_id:
        email, password = users.ensure_demo_admin(account_id, settings=settings)
        console.print(f"[bold]Web app[/bold]: run [bold]./run api[/bold], open "
                      f"{settings.public_base_url.rstrip('/')}/ and sign in as [bold]{email}[/bold] "
                      f"with password [bold]{password}[/bold] (admin of {account_id}; a new password "
                      "each demo run)")
    console.print("[bold]Dagster UI[/bold]: run [bold]./run ui[/bold], then open http://127.0.0.1:3000")
    console.print("More: [bold]./run --help[/bold]")
