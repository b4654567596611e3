"""Deduplication: the PUT rate of an object stored for the first time beside the same bytes
PUT again under another name (a dedup hit). A hit still receives and hashes every byte;
what it saves is the fsync and the rename (the temporary file is unlinked instead) and the
disk space. ``make bench`` adds these rows; on its own:
``python -m benchmarks.dedup [--mib 64] [--rounds 3]``.

Each round makes new random content, so its first PUT is fresh; curl streams the body
through Djinn's ``POST /objects``, as ``big.djinn_round`` does.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .big import MIB, make_source
from .report import Row, markdown
from .stack import StowageServer, stowage

OBJECT_MIB = 64


@dataclass
class Repeated:
    """MiB/s of PUTs, median over rounds."""

    fresh: float
    repeated: float


def djinn_put_mib_s(server: StowageServer, source: Path, name: str) -> float:
    """One raw-body POST /objects streamed by curl; the object is left in place (the
    repeated PUT must find it)."""
    auth = ["-H", f"Authorization: Bearer {server.token}"]
    start = time.perf_counter()
    subprocess.run(
        ["curl", "-sS", "--fail", *auth, "-X", "POST", "-T", str(source),
         f"{server.base}/objects?name={name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return source.stat().st_size / MIB / (time.perf_counter() - start)


def measure(server: StowageServer, work: Path, size_mib: int, rounds: int) -> Repeated:
    fresh, repeated = [], []
    for i in range(rounds):
        source = make_source(work / f"dedup-{i}.bin", size_mib)
        fresh.append(djinn_put_mib_s(server, source, f"fresh-{i}"))
        repeated.append(djinn_put_mib_s(server, source, f"again-{i}"))
        source.unlink()
    return Repeated(statistics.median(fresh), statistics.median(repeated))


def rows(found: Repeated, size_mib: int) -> list[Row]:
    section = f"deduplication, {size_mib} MiB objects"
    return [
        Row(section, "PUT, Djinn POST /objects, new content", found.fresh, "MiB/s"),
        Row(section, "PUT, Djinn POST /objects, same content again (dedup hit)",
            found.repeated, "MiB/s", "the same PUT of new content", found.fresh),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=OBJECT_MIB, help="object size in MiB")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown")
    parser.add_argument("--dir", type=Path, default=None, help="where data lives during runs")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-dedup-", dir=args.dir) as work,
        stowage(Path(work) / "stowage") as server,
    ):
        found = measure(server, Path(work), args.mib, args.rounds)
    print(markdown(rows(found, args.mib)))


if __name__ == "__main__":
    main()
