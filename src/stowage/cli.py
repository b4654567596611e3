"""The ``stowage`` command: run the server, administer users, tokens, S3 access keys,
retention rules and quotas, report usage, and (in ``client.commands``) use a server over
HTTP.

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
from rich.measure import Measurement
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
from .core.ports import MetadataStore
from .core.quotas import QuotaService, UsageReport, parse_size
from .core.retention import RetentionService, RuledRoot, format_duration, parse_duration
from .display import size_text

app = typer.Typer(
    help="stowage: a self-hosted object store.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ADMIN = "Server (runs on the server's machine, with its STOWAGE_* settings)"
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage S3 access keys.", no_args_is_help=True)
retention_app = typer.Typer(
    help="Retention rules of root namespaces (their children inherit them).",
    no_args_is_help=True,
)
quotas_app = typer.Typer(help="Limit what users and root namespaces hold.", no_args_is_help=True)
blobs_app = typer.Typer(help="The stored blobs, shared by identical objects.", no_args_is_help=True)
app.add_typer(users_app, name="users", rich_help_panel=ADMIN)
app.add_typer(tokens_app, name="tokens", rich_help_panel=ADMIN)
app.add_typer(keys_app, name="keys", rich_help_panel=ADMIN)
app.add_typer(retention_app, name="retention", rich_help_panel=ADMIN)
app.add_typer(quotas_app, name="quotas", rich_help_panel=ADMIN)
app.add_typer(blobs_app, name="blobs", rich_help_panel=ADMIN)
register_client_commands(app)

out = Console(soft_wrap=True)
err = Console(stderr=True)
T = TypeVar("T")
# Tokens and S3 access keys carry the same scopes, in Djinn's grammar.
ScopeOption = Annotated[
    str, typer.Option(help='Scopes, e.g. "object:read,write,delete namespace:read"')
]


def _with_meta(action: Callable[[MetadataStore, bytes], Awaitable[T]]) -> T:
    """Migrate, then run one admin action on the metadata (and the presign secret);
    domain errors become a message and exit 1."""
    settings = Settings()
    secret = migrate_for_admin(settings)

    async def run() -> T:
        meta = open_metadata(settings)
        try:
            return await action(meta, secret)
        finally:
            await meta.close()

    try:
        return asyncio.run(run())
    except StowageError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


def _with_access(action: Callable[[AccessService], Awaitable[T]]) -> T:
    return _with_meta(lambda meta, secret: action(AccessService(meta, SystemClock(), secret)))


def _with_quotas(action: Callable[[QuotaService], Awaitable[T]]) -> T:
    return _with_meta(lambda meta, _secret: action(QuotaService(meta, SystemClock())))


def _with_retention(action: Callable[[RetentionService], Awaitable[T]]) -> T:
    return _with_meta(lambda meta, _secret: action(RetentionService(meta)))


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
    totals: BlobTotals = _with_meta(lambda meta, _secret: meta.blob_totals(SystemClock().now_ms()))
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
    return _parsed(parse_scopes, text)


def _parsed(parse: Callable[[str], T], text: str) -> T:
    """An option parsed, with bad input a message and exit 1 like every domain error."""
    try:
        return parse(text)
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


def _rule_words(ruled: RuledRoot) -> tuple[str, str, str]:
    """The namespace as ``PATH@OWNER`` and its two limits ("" where there is none)."""
    rule = ruled.namespace.retention
    max_age = rule.max_age_ms if rule else None
    keep = rule.keep_newest if rule else None
    return (
        f"{ruled.namespace.path}@{ruled.owner.name}",
        format_duration(max_age) if max_age is not None else "",
        str(keep) if keep is not None else "",
    )


@retention_app.command("set")
def retention_set(
    namespace: Annotated[str, typer.Argument(help="A root namespace, as PATH@OWNER")],
    max_age: Annotated[
        str | None, typer.Option(help="Objects older than this expire: 30d, 12h, 90m, 45s")
    ] = None,
    keep_newest: Annotated[
        int | None, typer.Option(help="Only the newest N completed objects of each namespace stay")
    ] = None,
) -> None:
    """Set a root namespace's retention rule, replacing the one it had (a limit not given
    is lifted). The reaper enforces it; an object's own TTL still ends it if earlier."""
    age_ms = _parsed(parse_duration, max_age) if max_age is not None else None
    ruled = _with_retention(lambda r: r.set(namespace, age_ms, keep_newest))
    path, age, keep = _rule_words(ruled)
    limits = [f"max age {age}" if age else "", f"keep newest {keep}" if keep else ""]
    out.print(f"retention of {path}: {', '.join(w for w in limits if w)}")


@retention_app.command("clear")
def retention_clear(
    namespace: Annotated[str, typer.Argument(help="A root namespace, as PATH@OWNER")],
) -> None:
    """Remove a root namespace's retention rule; its objects stay until their own TTL."""
    ruled = _with_retention(lambda r: r.clear(namespace))
    out.print(f"retention of {_rule_words(ruled)[0]}: none")


@retention_app.command("list")
def retention_list() -> None:
    """List the root namespaces that have a retention rule."""
    table = Table("namespace", "max age", "keep newest")
    for ruled in _with_retention(lambda r: r.rules()):
        table.add_row(*_rule_words(ruled))
    out.print(table)


UserOption = Annotated[str | None, typer.Option("--user", help="A user's quota")]
NamespaceOption = Annotated[
    str | None, typer.Option("--namespace", help="A root namespace's quota, as PATH@OWNER")
]
ExactOption = Annotated[bool, typer.Option("--bytes", help="Sizes in bytes, not 1.5 GiB")]


def _size(n: int | None, exact: bool) -> str:
    return "" if n is None else str(n) if exact else size_text(n, "")


def _print_usage(reports: list[UsageReport], exact: bool) -> None:
    """One row per user or namespace: what it holds against its limits. Sizes are logical
    bytes (as uploaded), which quotas count. What the store keeps of them is a figure of
    the whole store (``_print_stored``): a blob shared by identical objects belongs to no
    one user."""
    table = Table(
        "user or namespace",
        Column("objects", justify="right"),
        Column("max objects", justify="right"),
        Column("logical bytes", justify="right"),
        Column("max bytes", justify="right"),
    )
    for r in reports:
        quota = r.quota
        max_objects = quota.max_objects if quota else None
        table.add_row(
            r.scope,
            str(r.usage.objects),
            "" if max_objects is None else str(max_objects),
            _size(r.usage.bytes, exact),
            _size(quota.max_bytes if quota else None, exact),
        )
    # A row per line even past the terminal's width (80 columns when piped): scripts and
    # people grep these, and rich would fold a long PATH@OWNER over two lines.
    needed = Measurement.get(out, out.options.update_width(10_000), table).maximum
    Console(soft_wrap=True, width=max(out.width, needed)).print(table)


@quotas_app.command("set")
def quotas_set(
    user: UserOption = None,
    namespace: NamespaceOption = None,
    max_bytes: Annotated[
        str | None, typer.Option(help="At most this many bytes: 10GiB, 500MB, 1048576")
    ] = None,
    max_objects: Annotated[int | None, typer.Option(help="At most this many objects")] = None,
) -> None:
    """Limit a user, or a root namespace with all its children. Limits not given stay as
    they were; uploads that would go past a limit are refused from now on."""
    report = _with_quotas(
        lambda q: q.set(
            user=user,
            namespace=namespace,
            max_bytes=parse_size(max_bytes) if max_bytes is not None else None,
            max_objects=max_objects,
        )
    )
    _print_usage([report], exact=False)


@quotas_app.command("list")
def quotas_list(exact: ExactOption = False) -> None:
    """Every quota, with what its user or namespace holds now."""
    _print_usage(_with_quotas(lambda q: q.quotas()), exact)


@quotas_app.command("clear")
def quotas_clear(user: UserOption = None, namespace: NamespaceOption = None) -> None:
    """Remove a user's or a root namespace's quota: no limit any more."""
    _with_quotas(lambda q: q.clear(user=user, namespace=namespace))
    out.print(f"cleared the quota of {user or namespace}")


@app.command(rich_help_panel=ADMIN)
def usage(
    user: Annotated[str | None, typer.Option(help="Only this user")] = None,
    exact: ExactOption = False,
) -> None:
    """What each user (and each namespace with a quota) holds, against their quotas:
    objects not deleted or expired, and their bytes as uploaded; then, for the whole store,
    the bytes stored (identical objects share one blob) and what that saves."""
    if user is not None:
        _print_usage([_with_quotas(lambda q: q.usage_of(user))], exact)
        return
    _print_usage(_with_quotas(lambda q: q.everyone()), exact)
    totals: BlobTotals = _with_meta(lambda meta, _secret: meta.blob_totals(SystemClock().now_ms()))
    out.print(
        f"store: {_size(totals.logical_bytes, exact)} logical in {totals.objects} objects, "
        f"{_size(totals.stored_bytes, exact)} stored in {totals.blobs} blobs, "
        f"{_size(totals.saved_bytes, exact)} saved by deduplication"
    )


if __name__ == "__main__":
    app()
