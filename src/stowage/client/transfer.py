"""Moving bytes with a progress bar: sources for uploads, atomic files for downloads.

The bar (bytes, speed, time left) goes to stderr and only when stderr is a terminal, so
pipes and scripts see nothing but the data they asked for.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..core.naming import content_kind

CHUNK = 1024 * 1024
SPOOL_IN_MEMORY = 8 * 1024 * 1024


@dataclass
class Source:
    """What ``put`` sends: a seekable file of known size, and what to call it."""

    file: BinaryIO
    size: int
    name: str
    content_type: str  # one of the Runloop enum's values


@contextlib.contextmanager
def open_source(path: str, name: str | None) -> Iterator[Source]:
    """A file as it is, a directory as a tar.gz, ``-`` as standard input.

    Directories and stdin are spooled to a temporary file first: the upload needs its
    length up front (S3 presigned PUTs take no chunked bodies), and nothing half-made
    should ever be sent.
    """
    if path == "-":
        if not name:
            raise ValueError("reading standard input needs --name")
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
            shutil.copyfileobj(sys.stdin.buffer, spool, CHUNK)
            yield _rewound(spool, name)  # type: ignore[arg-type]
        return
    local = Path(path)
    if local.is_dir():
        with tempfile.TemporaryFile() as spool:
            with tarfile.open(fileobj=spool, mode="w:gz") as tar:
                tar.add(local, arcname=local.resolve().name)
            yield _rewound(spool, name or f"{local.resolve().name}.tar.gz")
        return
    if not local.is_file():
        raise FileNotFoundError(f"{path}: no such file or directory")
    with open(local, "rb") as f:
        yield _rewound(f, name or local.name)


def _rewound(file: BinaryIO, name: str) -> Source:
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    return Source(file, size, name, content_kind(name).value)


class Transfer:
    """One progress bar for one transfer (disabled unless stderr is a terminal)."""

    def __init__(self, console: Console, label: str, total: int | None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self._task: TaskID = self._progress.add_task(label, total=total)

    def __enter__(self) -> Transfer:
        self._progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._progress.stop()

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def read(self, file: BinaryIO) -> Iterator[bytes]:
        while chunk := file.read(CHUNK):
            self.advance(len(chunk))
            yield chunk


def write_atomically(chunks: Iterable[bytes], target: Path, transfer: Transfer) -> int:
    """Write to a temporary file beside ``target`` and rename it into place, so a failed
    download never leaves a truncated file under the real name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, staged = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    written = 0
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                written += len(chunk)
                transfer.advance(len(chunk))
        os.replace(staged, target)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
    return written


def safe_file_name(name: str) -> str:
    """A local file name from an object name, which may hold ``/`` or ``..``."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base if base not in ("", ".", "..") else "download"
