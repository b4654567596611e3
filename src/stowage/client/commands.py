"""The client half of the ``stowage`` command: login, put, get, ls, info, rm, share.

Data goes to stdout (ids, URLs, listings, bytes with ``-o -``); progress and notes go to
stderr. Exit codes: 0 done, 1 the server or the network said no (with a one-line
message), 2 a usage mistake.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from ..display import size_text, utc_minute
from .api import ClientError, StowageClient
from .config import Login, NotLoggedIn, load, save
from .transfer import Transfer, open_source, safe_file_name, write_atomically

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
MISSING = "-"  # plain ASCII, so columns line up anywhere
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r} is not a duration such as 90s, 15m, 12h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(1)


@contextlib.contextmanager
def _client() -> Iterator[StowageClient]:
    """The configured client; every expected failure becomes one line and exit 1."""
    try:
        with StowageClient(load()) as client:
            yield client
    except httpx.TransportError as exc:  # mid-transfer; failures to connect are ClientErrors
        raise _fail(f"the connection to the server failed: {exc}") from None
    except (ClientError, NotLoggedIn, OSError, ValueError) as exc:
        raise _fail(getattr(exc, "message", None) or str(exc)) from None


def login(
    url: Annotated[str, typer.Argument(help="The server, e.g. http://127.0.0.1:8000")],
    token: Annotated[str, typer.Option(help="An API token (stowage tokens create)")],
) -> None:
    """Check a server and token, and save them for the other commands (file mode 0600)."""
    creds = Login(url.rstrip("/"), token)
    try:
        with StowageClient(creds) as client:
            username = client.whoami()
    except ClientError as exc:
        raise _fail(exc.message) from None
    path = save(creds)
    err.print(f"logged in to {creds.url} as {username}; saved to {path}")


def put(
    path: Annotated[str, typer.Argument(help="A file, a directory (sent as .tar.gz) or -")],
    name: Annotated[str | None, typer.Option(help="Object name [file name]")] = None,
    ttl: Annotated[str | None, typer.Option(help="Delete after, e.g. 12h or 7d")] = None,
    meta: Annotated[list[str] | None, typer.Option(help="key=value, repeatable")] = None,
    namespace: Annotated[
        str | None, typer.Option(help="Djinn namespace path[@owner]; no --ttl/--meta")
    ] = None,
) -> None:
    """Upload; prints the new object's id."""
    metadata: dict[str, str] = {}
    for item in meta or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--meta")
        metadata[key] = value
    ttl_ms = round(parse_duration(ttl) * 1000) if ttl else None
    if namespace and (metadata or ttl_ms):
        raise typer.BadParameter("namespaces take no --ttl or --meta", param_hint="--namespace")
    with (
        _client() as client,
        open_source(path, name) as source,
        Transfer(err, f"put {source.name}", source.size) as bar,
    ):
        if namespace:
            chunks = bar.read(source.file)
            stored = client.store_in_namespace(source.name, namespace, chunks, source.size)
            object_id = stored["object_id"]  # one kind of id, whichever dialect stored it
        else:
            created = client.create(source.name, source.content_type, metadata, ttl_ms)
            client.put_bytes(created["upload_url"], bar.read(source.file), source.size)
            object_id = client.complete(created["id"])["id"]
    err.print(f"stored {escape(source.name)} ({size_text(source.size, MISSING)})")
    print(object_id)


def get(
    object_id: Annotated[str, typer.Argument(help="obj_… or a numeric (Djinn) id")],
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="File path, or - for stdout")
    ] = None,
) -> None:
    """Download an object, by default into a file named after it in this directory."""
    with _client() as client, client.download(object_id) as (response, length):
        if output == "-":
            with Transfer(err, f"get {object_id}", length) as bar:
                for chunk in response.iter_bytes(1024 * 1024):
                    sys.stdout.buffer.write(chunk)
                    bar.advance(len(chunk))
            sys.stdout.buffer.flush()
            return
        target = Path(output) if output else Path(safe_file_name(_disposition_name(response)))
        if target.is_dir():
            target = target / safe_file_name(_disposition_name(response))
        with Transfer(err, f"get {target.name}", length) as bar:
            written = write_atomically(response.iter_bytes(1024 * 1024), target, bar)
    err.print(f"wrote {target} ({size_text(written, MISSING)})")


def _disposition_name(response: httpx.Response) -> str:
    header = response.headers.get("content-disposition", "")
    _, _, encoded = header.partition("filename*=UTF-8''")
    return unquote(encoded) if encoded else "download"


def ls(
    search: Annotated[str | None, typer.Option(help="An id, or part of a name")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines a script can read")] = False,
) -> None:
    """List your objects (and those in namespaces you collaborate on)."""
    with _client() as client:
        objects, more = client.list(search, limit)
    if as_json:
        for obj in objects:
            print(json.dumps(obj))
        return
    rows = [("ID", "SIZE", "STATE", "CREATED (UTC)", "EXPIRES (UTC)", "NAME")]
    for obj in objects:
        rows.append(
            (
                obj["id"],
                size_text(obj["size_bytes"], MISSING),
                obj["state"],
                utc_minute(obj["create_time_ms"], MISSING),
                utc_minute(obj["delete_after_time_ms"], MISSING),
                obj["name"],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:  # plain columns, never truncated: ids must survive a narrow terminal
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*padded, row[5]]))
    if more:
        err.print(f"(showing the newest {limit}; --limit for more)")


def info(
    object_id: Annotated[str, typer.Argument(help="obj_… or a numeric (Djinn) id")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object")] = False,
) -> None:
    """Everything about one object: size, hashes, type, metadata, expiry, namespace."""
    with _client() as client:
        view = client.retrieve(object_id)
        djinn = client.details(view["id"]) if view["state"] == "READ_ONLY" else None
    facts: dict[str, Any] = {
        "id": view["id"],
        "name": view["name"],
        "state": view["state"],
        "size": view["size_bytes"],
        "content_type": view["content_type"],
        "created": utc_minute(view["create_time_ms"], MISSING),
        "expires": utc_minute(view["delete_after_time_ms"], MISSING),
        "metadata": view.get("metadata") or {},
    }
    if djinn:
        namespace = djinn.get("namespace")
        facts |= {
            "djinn_id": djinn["id"],
            "type": djinn["type"],
            "md5": djinn["md5"],
            "sha256": djinn["sha256"],
            "namespace": namespace["path"] if namespace else None,
            "owner": (djinn.get("user") or {}).get("username"),
        }
    if as_json:
        print(json.dumps(facts))
        return
    for key, value in facts.items():
        shown = json.dumps(value) if isinstance(value, dict) else value
        out.print(f"[bold]{key:>12}[/bold]  {escape(str(shown))}")


def rm(
    object_ids: Annotated[list[str], typer.Argument(help="One or more ids")],
) -> None:
    """Delete objects (their bytes at once). Exits 1 if any could not be deleted."""
    failed = False
    with _client() as client:
        for object_id in object_ids:
            try:
                client.delete(object_id)
                err.print(f"deleted {object_id}")
            except ClientError as exc:
                err.print(f"[red]error:[/red] {escape(exc.message)}")
                failed = True
    if failed:
        raise typer.Exit(1)


def share(
    object_id: Annotated[str, typer.Argument(help="obj_… or a numeric (Djinn) id")],
    expires: Annotated[str, typer.Option(help="How long the link works, up to 7d")] = "1h",
) -> None:
    """Print a link that downloads the object without a token until it expires."""
    seconds = max(1, round(parse_duration(expires)))
    with _client() as client:
        print(client.share(object_id, seconds))


def register(app: typer.Typer) -> None:
    for command in (login, put, get, ls, info, rm, share):
        app.command(rich_help_panel="Client (talks to a server over HTTP)")(command)
