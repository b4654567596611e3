"""The ``stowage`` command: run the server, administer users, tokens and S3 access keys,
and (in ``client.commands``) use a server over HTTP.

Admin commands talk to the metadata database directly (same ``STOWAGE_*`` settings as the
server), so they work whether or not a server is running. The S3 key commands derive
secrets from the presign secret: they need the server's ``STOWAGE_PRESIGN_SECRET``, or its
data directory's ``presign-secret``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Column, Table
from sqlalchemy.engine import make_url

from . import __version__, logs
from .backends import open_backends, open_metadata
from .bootstrap import ADMIN_TOKEN_FILE, migrate, migrate_for_admin, prepare
from .client.commands import register as register_client_commands
from .config import Settings
from .core.access import AccessService, IssuedKey, format_scopes, parse_scopes
from .core.clock import SystemClock
from .core.errors import StowageError
from .core.fsck import FsckReport
from .core.models import AccessKey, BlobTotals, Token, User

app = typer.Typer(
    help="stowage: a self-hosted object store.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ADMIN = "Server (runs on the server's machine, with its STOWAGE_* settings)"
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage S3 access keys.", no_args_is_help=True)
blobs_app = typer.Typer(help="The stored blobs, shared by identical objects.", no_args_is_help=True)
app.add_typer(users_app, name="users", rich_help_panel=ADMIN)
app.add_typer(tokens_app, name="tokens", rich_help_panel=ADMIN)
app.add_typer(keys_app, name="keys", rich_help_panel=ADMIN)
app.add_typer(blobs_app, name="blobs", rich_help_panel=ADMIN)
register_client_commands(app)

out = Console(soft_wrap=True)
err = Console(stderr=True)
T = TypeVar("T")
# Tokens and S3 access keys carry the same scopes, in Djinn's grammar.
ScopeOption = Annotated[
    str, typer.Option(help='Scopes, e.g. "object:read,write,delete namespace:read"')
]


def _with_access(action: Callable[[AccessService], Awaitable[T]]) -> T:
    """Migrate, then run one admin action; domain errors become a message and exit 1."""
    settings = Settings()
    secret = migrate_for_admin(settings)

    async def run() -> T:
        meta = open_metadata(settings)
        try:
            return await action(AccessService(meta, SystemClock(), secret))
        finally:
            await meta.close()

    try:
        return asyncio.run(run())
    except StowageError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


def _banner(settings: Settings, new_token: str | None) -> None:
    base = f"http://{settings.host}:{settings.port}"
    data = settings.data_dir.resolve()
    token_file = data / ADMIN_TOKEN_FILE
    db = (
        make_url(settings.database_url).render_as_string(hide_password=True)
        if settings.database_url
        else f"SQLite {data / 'stowage.db'}"
    )
    out.print(f"[bold]stowage {__version__}[/bold] listening on [cyan]{base}[/cyan]")
    out.print(f"  data:     {data}  (metadata: {db}; blobs: {settings.blob_dir.resolve()})")
    plural = "es" if settings.workers != 1 else ""
    out.print(f"  workers:  {settings.workers} process{plural} (STOWAGE_WORKERS)")
    if new_token:
        out.print(f"  admin token (shown once, saved to {token_file}):")
        out.print(f"    [bold green]{new_token}[/bold green]")
    else:
        out.print(f"  admin token: in {token_file} (if you kept it); more: stowage tokens create")
    out.print("  connect:")
    out.print(f"    export RUNLOOP_BASE_URL={base} RUNLOOP_API_KEY=$(cat {token_file})")
    out.print(f'    curl -H "Authorization: Bearer $RUNLOOP_API_KEY" {base}/v1/objects')
    out.print(f"    stowage login {base} --token $(cat {token_file})")
    out.print(f"  console:  {base}/console")
    if settings.s3_api_port:
        s3 = f"http://{settings.host}:{settings.s3_api_port}"
        style = "path-style"
        if settings.s3_api_domain:
            style += f", or {{bucket}}.{settings.s3_api_domain}"
        out.print(f"  S3 API:   {s3}  ({style}; keys: stowage keys create --user NAME)")
        out.print(f"    aws --endpoint-url {s3} s3 ls")
    out.print(f"  API docs: {base}/docs")


@app.command(rich_help_panel=ADMIN)
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [STOWAGE_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [STOWAGE_PORT]")] = None,
) -> None:
    """Migrate, create the admin on first start, and serve HTTP/1.1 and h2c."""
    from . import server

    settings = Settings()
    settings.host = host if host is not None else settings.host
    settings.port = port if port is not None else settings.port
    logs.configure(settings.log_level, settings.log_format)
    try:
        for taken in (settings.port, settings.s3_api_port):
            if taken:
                server.check_port_free(settings.host, taken)
    except server.PortBusy as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    prepared = prepare(settings)
    _banner(settings, prepared.new_admin_token)
    sys.stdout.flush()
    server.serve(settings)


@app.command("migrate", rich_help_panel=ADMIN)
def migrate_command() -> None:
    """Bring the metadata database schema up to date."""
    migrate(Settings())
    out.print("database is up to date")


@app.command(rich_help_panel=ADMIN)
def fsck(
    verify: Annotated[bool, typer.Option(help="Re-hash every blob against its sha256")] = False,
    fix: Annotated[
        bool,
        typer.Option(
            help="Delete orphan blobs, abort orphan multipart uploads, release "
            "unreferenced blob rows for the reaper"
        ),
    ] = False,
    grace: Annotated[
        float, typer.Option(help="Ignore orphans younger than this many seconds")
    ] = 3600,
) -> None:
    """Check that rows and blobs agree: orphans, missing blobs, checksum mismatches,
    objects sharing a blob that disagree about it, blob rows nothing references.

    Exits 0 when nothing is wrong (or --fix removed every orphan), 1 otherwise."""
    from rich.progress import Progress

    from .core.fsck import check

    settings = Settings()
    migrate(settings)

    async def run() -> FsckReport:
        meta, blobs = open_backends(settings)
        try:
            with Progress(console=err, transient=True, disable=not verify) as bar:
                task = bar.add_task("verifying", total=None)
                return await check(
                    meta,
                    blobs,
                    SystemClock(),
                    verify=verify,
                    fix=fix,
                    grace_s=grace,
                    progress=lambda n: bar.update(task, completed=n),
                )
        finally:
            blobs.close()
            await meta.close()

    report = asyncio.run(run())
    out.print(f"{report.rows} objects with blobs, {report.blobs} blobs stored")
    if verify:
        out.print(f"verified {report.verified} blobs (each shared one once)")
    for label, items in (
        ("orphan blobs", report.orphans),
        ("objects whose blob is missing", report.missing),
        ("objects whose bytes do not match their sha256", report.corrupt),
        ("objects that disagree with others on their shared blob", report.disagreeing),
        ("blob rows nothing references", report.unreferenced),
        ("orphan multipart uploads in the blob store", report.orphan_uploads),
    ):
        if items:
            out.print(f"[yellow]{len(items)} {label}:[/yellow] {' '.join(items)}")
    if report.removed:
        out.print(f"removed {len(report.removed)} orphan blobs")
    if report.released:
        out.print(f"released {len(report.released)} blob rows; the reaper removes them later")
    if report.aborted:
        out.print(f"aborted {len(report.aborted)} orphan multipart uploads")
    orphaned = report.orphans or report.orphan_uploads or report.unreferenced
    unresolved = report.missing or report.corrupt or report.disagreeing or (orphaned and not fix)
    if not unresolved:
        out.print("[green]clean[/green]" if report.clean else "[green]fixed[/green]")
    raise typer.Exit(1 if unresolved else 0)


@blobs_app.command("stats")
def blobs_stats() -> None:
    """Logical bytes (every completed object's size) beside the bytes stored, each
    distinct content once, and what deduplication saves."""
    settings = Settings()
    migrate(settings)

    async def run() -> BlobTotals:
        meta = open_metadata(settings)
        try:
            return await meta.blob_totals(SystemClock().now_ms())
        finally:
            await meta.close()

    totals = asyncio.run(run())
    table = Table("", Column("count", justify="right"), Column("bytes", justify="right"))
    table.add_row("objects (logical)", str(totals.objects), str(totals.logical_bytes))
    table.add_row("blobs (stored)", str(totals.blobs), str(totals.stored_bytes))
    table.add_row("saved by deduplication", "", str(totals.saved_bytes))
    out.print(table)


@users_app.command("create")
def users_create(
    name: str,
    email: Annotated[str | None, typer.Option(help="Contact address")] = None,
    admin: Annotated[bool, typer.Option(help="Make the user an administrator")] = False,
) -> None:
    """Create a user (then give them a token with `stowage tokens create`)."""
    user = _with_access(lambda a: a.create_user(name, email, is_admin=admin))
    out.print(f"created user {user.name} (id {user.id})")


def _scopes(text: str) -> frozenset[str]:
    """``parse_scopes``, with a bad scope a message and exit 1 like every domain error."""
    try:
        return parse_scopes(text)
    except StowageError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


def _print_credentials(
    identity: list[str | Column], rows: list[tuple[list[str], Token | AccessKey, User]]
) -> None:
    """The table of ``tokens list`` and ``keys list``: the columns that identify each kind,
    then what both have (owner, label, scopes, dates)."""
    table = Table(*identity, "user", "name", "scopes", "created", "revoked")
    for ids, credential, owner in rows:
        created = datetime.fromtimestamp(credential.created_at_ms / 1000, UTC)
        table.add_row(
            *ids,
            owner.name,
            credential.name,
            format_scopes(credential.scopes),
            created.strftime("%Y-%m-%d %H:%M"),
            "yes" if credential.revoked_at_ms else "",
        )
    out.print(table)


@tokens_app.command("create")
def tokens_create(
    user: Annotated[str, typer.Option(help="User who owns the token")],
    scope: ScopeOption,
    name: Annotated[str, typer.Option(help="A label to recognise the token by")] = "cli",
) -> None:
    """Create a token. It is printed once; stowage keeps only its hash."""
    scopes = _scopes(scope)
    issued = _with_access(lambda a: a.issue_token(user, scopes, name))
    err.print(f"token {issued.token.id} for {user} ({format_scopes(scopes)}); shown once:")
    print(issued.secret)


@tokens_app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens")] = None,
) -> None:
    """List tokens (never their secrets). S3 access keys are listed by `stowage keys list`."""
    rows = _with_access(lambda a: a.list_tokens(user))
    _print_credentials(["id", "prefix"], [([str(t.id), t.prefix + "…"], t, o) for t, o in rows])


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by id; requests with it fail from now on."""
    _with_access(lambda a: a.revoke_token(token_id))
    out.print(f"revoked token {token_id}")


def _print_key(issued: IssuedKey, what: str) -> None:
    """The key's two halves as shell lines on stdout (``eval "$(stowage keys create …)"``
    works, and so does pasting them); the words on stderr, as ``tokens create`` does."""
    key = issued.key
    err.print(f"access key {key.access_key_id} {what} ({format_scopes(key.scopes)})")
    err.print("secret shown once; for the aws CLI and SDKs, export these lines, or use")
    err.print("  aws configure set aws_access_key_id ID / aws_secret_access_key SECRET")
    print(f"export AWS_ACCESS_KEY_ID={key.access_key_id}")
    print(f"export AWS_SECRET_ACCESS_KEY={issued.secret}")


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Option(help="User the key acts as")],
    scope: ScopeOption,
    name: Annotated[str, typer.Option(help="A label to recognise the key by")] = "cli",
) -> None:
    """Create an S3 access key. Its secret is printed once; stowage stores only a salt and
    derives the secret from it and the presign secret."""
    scopes = _scopes(scope)
    issued = _with_access(lambda a: a.create_key(user, scopes, name))
    _print_key(issued, f"for {user}")


@keys_app.command("list")
def keys_list(
    user: Annotated[str | None, typer.Option(help="Only this user's keys")] = None,
) -> None:
    """List S3 access keys (never their secrets)."""
    rows = _with_access(lambda a: a.list_keys(user))
    # The id is what `keys revoke` and `keys rotate` take: never wrapped in a narrow terminal.
    key_id = Column("access key id", no_wrap=True)
    _print_credentials([key_id], [([k.access_key_id], k, o) for k, o in rows])


@keys_app.command("revoke")
def keys_revoke(access_key_id: str) -> None:
    """Revoke an S3 access key; requests signed with it fail within a second."""
    _with_access(lambda a: a.revoke_key(access_key_id))
    out.print(f"revoked access key {access_key_id}")


@keys_app.command("rotate")
def keys_rotate(access_key_id: str) -> None:
    """Give an S3 access key a new secret, printed once; the old secret fails within a
    second."""
    issued = _with_access(lambda a: a.rotate_key(access_key_id))
    _print_key(issued, "has a new secret")


if __name__ == "__main__":
    app()
