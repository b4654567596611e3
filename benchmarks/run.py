"""``make bench``: stowage beside baselines measured in the same run on the same machine.

Prints a markdown table (every workload, its baseline, the ratio and the goal from issue 6)
and writes ``benchmarks/results/latest.json`` with the figures, machine facts and versions.
``--quick`` (``make bench QUICK=1``) shrinks every workload to finish in under two minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stowage.seaweed import SeaweedFS, weed_binary

from . import big, dedup, listing, memory, samewrk, small
from .report import Row, markdown
from .stack import pg_schema, s3_env, s5cmd_seconds, sendfile_server, stowage

RESULTS = Path(__file__).parent / "results"
BUCKET = "bench"
GIB = 1024


@dataclass
class Plan:
    big_mib: int
    rounds: int
    dd_samples: int
    small_count: int
    list_rows: int
    list_requests: int
    memory_mib: tuple[int, int]  # a small and a big object size: peak RSS must not follow
    wrk_seconds: int

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(128, 1, 2, 600, 100_000, 40, (16, 128), 3)
        return cls(GIB, 3, 3, 3000, 1_000_000, 200, (64, GIB), 10)


def size_label(mib: int) -> str:
    return f"{mib // GIB} GiB" if mib >= GIB and mib % GIB == 0 else f"{mib} MiB"


def big_rows(plan: Plan, work: Path, s3: SeaweedFS, figures: dict[str, Any]) -> list[Row]:
    label = size_label(plan.big_mib)
    source = big.make_source(work / "source.bin", plan.big_mib)
    dd = statistics.median(
        big.dd_fdatasync_mib_s(work, plan.big_mib) for _ in range(plan.dd_samples)
    )
    hashing = big.hash_mib_s(min(plan.big_mib, 512))
    with stowage(work / "local") as server:
        runloop = big.median_transfer(
            [big.runloop_round(server, source) for _ in range(plan.rounds)]
        )
        djinn = big.median_transfer(
            [big.djinn_round(server, source, f"big-{i}") for i in range(plan.rounds)]
        )
    with sendfile_server(work) as base:
        sendfile, sendfile_ranges = big.sendfile_get(base, source)
    seaweed = big.s5cmd_rounds(s3, BUCKET, source, plan.rounds)
    figures["big"] = {
        "object_mib": plan.big_mib,
        "dd_fdatasync_mib_s": dd,
        "md5_sha256_mib_s": hashing,
        "runloop": asdict(runloop),
        "djinn": asdict(djinn),
        "sendfile": {"get": sendfile, "get_ranges": sendfile_ranges},
        "seaweedfs": asdict(seaweed),
    }
    section = f"{label} objects"
    rows = []
    ceiling = min(dd, hashing)  # neither the disk nor one core's hashing can be beaten
    for dialect, t in (("Runloop presigned", runloop), ("Djinn POST /objects", djinn)):
        rows += [
            Row(section, f"PUT, {dialect} (md5+sha256, fsync)", t.put, "MiB/s",
                "min(dd conv=fdatasync, md5 + sha256)", ceiling, "≥ 0.9×", at_least_ratio=0.9),
            Row(section, f"PUT, {dialect}", t.put, "MiB/s", "SeaweedFS PUT (s5cmd)", seaweed.put),
        ]  # fmt: skip
    rows.append(Row(section, "dd conv=fdatasync", dd, "MiB/s"))
    rows.append(Row(section, "md5 + sha256 on one core", hashing, "MiB/s"))
    for dialect, t in (("Runloop presigned", runloop), ("Djinn Accept", djinn)):
        rows += [
            Row(section, f"GET whole, {dialect}", t.get, "MiB/s", "sendfile server",
                sendfile, "≥ 0.8× sendfile", at_least_ratio=0.8),
            Row(section, f"GET 4 parallel ranges, {dialect}", t.get_ranges, "MiB/s",
                "sendfile server, same ranges", sendfile_ranges, "≥ 0.8× sendfile",
                at_least_ratio=0.8),
        ]  # fmt: skip
    rows.append(
        Row(section, "GET whole, Runloop presigned", runloop.get, "MiB/s",
            "SeaweedFS GET (s5cmd cp, ranges)", seaweed.get)
    )  # fmt: skip
    return rows


def small_rows(plan: Plan, work: Path, s3: SeaweedFS, figures: dict[str, Any]) -> list[Row]:
    n = plan.small_count
    with stowage(work / "small-local") as server:
        ceiling = small.ceiling(server, n * 3)
        djinn = small.djinn(server, n, "s")
        flow = small.runloop_flow(server, n)
    seaweed = small.s5cmd(s3, BUCKET, work, n)
    figures["small"] = {
        "count": n,
        "concurrency": small.CONCURRENCY,
        "load_generator_ceiling_req_s": ceiling,
        "djinn": asdict(djinn),
        "runloop_flow_objects_s": flow,
        "seaweedfs": asdict(seaweed),
    }
    section = "4 KiB objects, 32 in flight"
    return [
        Row(section, "load generator ceiling (GET /healthz)", ceiling, "req/s"),
        Row(section, "PUT, Djinn POST /objects", djinn.put_s, "objects/s",
            "SeaweedFS PUT (s5cmd, its own ceiling)", seaweed.put_s),
        Row(section, "GET, Djinn Accept", djinn.get_s, "objects/s",
            "SeaweedFS GET (s5cmd, its own ceiling)", seaweed.get_s),
        Row(section, "Runloop create + PUT + complete", flow, "objects/s",
            "load generator ceiling ÷ 3", ceiling / 3, "≥ 1,000 objects/s",
            at_least_value=1000),
    ]  # fmt: skip


def failures(result: samewrk.WrkResult) -> str:
    """Said in the row when wrk saw answers that were not 2xx or socket errors."""
    return f" [{result.failed} failed]" if result.failed else ""


def same_client_rows(plan: Plan, work: Path, figures: dict[str, Any]) -> list[Row]:
    """stowage and SeaweedFS driven by the same compiled client (wrk), 4 KiB objects."""
    s3 = SeaweedFS.start(work / "seaweedfs-anonymous", buckets=(BUCKET,), anonymous=True)
    try:
        with stowage(work / "same-client") as server:
            f = samewrk.measure(server, s3, BUCKET, work / "wrk", plan.wrk_seconds)
    finally:
        s3.stop()
    figures["same_client"] = asdict(f)
    section = "4 KiB objects, same client (wrk -t1 -c32)"
    sw_put, sw_get = f.seaweed_put, f.seaweed_get
    put_base = f"SeaweedFS S3 PUT{failures(sw_put)} (no fsync)"
    get_base = f"SeaweedFS S3 GET{failures(sw_get)}"
    rows = [
        Row(section, f"PUT, Djinn POST /objects (fsync){failures(f.djinn_put)}",
            f.djinn_put.per_second, "objects/s", put_base, sw_put.per_second,
            "≥ 1× SeaweedFS", at_least_ratio=1),
        Row(section, f"PUT, Runloop presigned URL (fsync){failures(f.presigned_put)}",
            f.presigned_put.per_second, "objects/s", put_base, sw_put.per_second,
            "≥ 1× SeaweedFS", at_least_ratio=1),
        Row(section, f"GET, Djinn Accept{failures(f.djinn_get)}", f.djinn_get.per_second,
            "objects/s", get_base, sw_get.per_second, "≥ 2× SeaweedFS", at_least_ratio=2),
        Row(section, f"GET, Runloop presigned URL{failures(f.presigned_get)}",
            f.presigned_get.per_second, "objects/s", get_base, sw_get.per_second,
            "≥ 2× SeaweedFS", at_least_ratio=2),
    ]  # fmt: skip
    return rows


def s3_rows(plan: Plan, work: Path, s3: SeaweedFS, figures: dict[str, Any]) -> list[Row]:
    """stowage on PostgreSQL + SeaweedFS through the Djinn dialect, where the bytes pass
    through stowage (Runloop uploads in S3 mode go straight to the bucket)."""
    section = "S3 mode (PostgreSQL + SeaweedFS)"
    with pg_schema() as db:
        if db is None:
            figures["s3_mode"] = {"skipped": "no PostgreSQL (set STOWAGE_BENCH_DATABASE_URL)"}
            return []
        source = work / "source.bin"
        env = {"STOWAGE_DATABASE_URL": db, **s3_env(s3, BUCKET), "STOWAGE_S3_PREFIX": "stowage/"}
        with stowage(work / "s3-mode", env) as server:
            t = big.djinn_round(server, source, "big")
            smalls = small.djinn(server, plan.small_count, "s")
    direct = figures["big"]["seaweedfs"]
    theirs = figures["small"]["seaweedfs"]
    figures["s3_mode"] = {"big": asdict(t), "small": asdict(smalls)}
    label = size_label(plan.big_mib)
    return [
        Row(section, f"{label} PUT, Djinn", t.put, "MiB/s", "SeaweedFS PUT", direct["put"]),
        Row(section, f"{label} GET, Djinn", t.get, "MiB/s", "SeaweedFS GET", direct["get"]),
        Row(section, "4 KiB PUT, Djinn", smalls.put_s, "objects/s", "SeaweedFS", theirs["put_s"]),
        Row(section, "4 KiB GET, Djinn", smalls.get_s, "objects/s", "SeaweedFS", theirs["get_s"]),
    ]


def s3_api_rows(plan: Plan, work: Path, s3: SeaweedFS, figures: dict[str, Any]) -> list[Row]:
    """stowage's S3 API (SQLite + local disk, the defaults) beside SeaweedFS's, both driven
    by s5cmd: the small and big figures SeaweedFS gave in this run's earlier sections."""
    section = "S3 API, same client (s5cmd); stowage fsyncs, SeaweedFS does not"
    client = work / "s3-api-client"
    client.mkdir()
    with stowage(work / "s3-api") as server:
        endpoint = server.s3()
        s5cmd_seconds(endpoint, "mb", f"s3://{BUCKET}")
        smalls = small.s5cmd(endpoint, BUCKET, client, plan.small_count)
        t = big.s5cmd_rounds(
            endpoint, BUCKET, work / "source.bin", plan.rounds, big.digests_shown(server)
        )
    figures["s3_api"] = {"small": asdict(smalls), "big": asdict(t)}
    theirs, direct = figures["small"]["seaweedfs"], figures["big"]["seaweedfs"]
    label = size_label(plan.big_mib)
    until_digests = plan.big_mib / (plan.big_mib / t.put + t.settled_s)
    return [
        Row(section, "4 KiB PUT", smalls.put_s, "objects/s", "SeaweedFS S3, s5cmd",
            theirs["put_s"], "≥ 0.5×", at_least_ratio=0.5),
        Row(section, "4 KiB GET", smalls.get_s, "objects/s", "SeaweedFS S3, s5cmd",
            theirs["get_s"], "≥ 0.5×", at_least_ratio=0.5),
        Row(section, f"{label} multipart PUT", t.put, "MiB/s", "SeaweedFS S3, s5cmd",
            direct["put"], "≥ 1.5×", at_least_ratio=1.5),
        Row(section, f"{label} multipart PUT, until Djinn shows its sha256", until_digests,
            "MiB/s", "SeaweedFS S3, s5cmd", direct["put"]),
        Row(section, f"{label} GET (s5cmd cp: ranges in parallel)", t.get, "MiB/s",
            "SeaweedFS S3, s5cmd (the client's ceiling)", direct["get"]),
        Row(section, f"{label} GET, presigned URL (curl)", t.curl_get, "MiB/s",
            "SeaweedFS S3, same curl", direct["curl_get"], "≥ 1.5×", at_least_ratio=1.5),
    ]  # fmt: skip


def dedup_rows(plan: Plan, work: Path, figures: dict[str, Any]) -> list[Row]:
    """A 64 MiB object PUT fresh and PUT again (a dedup hit), on SQLite + local disk."""
    with stowage(work / "dedup") as server:
        found = dedup.measure(server, work, dedup.OBJECT_MIB, plan.rounds)
    figures["dedup"] = {"object_mib": dedup.OBJECT_MIB, **asdict(found)}
    return dedup.rows(found, dedup.OBJECT_MIB)


def list_rows(plan: Plan, work: Path, figures: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    figures["list"] = {"rows": plan.list_rows}
    section = f"list at {plan.list_rows:,} objects"

    def measure(db: str, server: Any, middle: str) -> None:
        found = listing.latencies(server, plan.list_rows, middle, plan.list_requests)
        figures["list"][db] = [asdict(f) for f in found]
        for f in found:
            goal = f"< {f.goal_ms:.0f} ms" if f.goal_ms is not None else ""
            rows.append(
                Row(f"{section}, {db}", f.what, f.p99_ms, "ms p99", f"p50 {f.p50_ms:.1f} ms",
                    goal=goal, at_most_value=f.goal_ms)
            )  # fmt: skip

    with stowage(work / "list-sqlite") as server:
        middle = listing.fill_sqlite(str(work / "list-sqlite" / "stowage.db"), plan.list_rows)
        measure("SQLite", server, middle)
    with pg_schema() as db:
        if db is not None:
            with stowage(work / "list-pg", {"STOWAGE_DATABASE_URL": db}) as server:
                measure("PostgreSQL", server, listing.fill_postgres(db, plan.list_rows))
    return rows


def memory_rows(plan: Plan, work: Path, figures: dict[str, Any]) -> list[Row]:
    rows, found = [], {}
    for mib in plan.memory_mib:
        source = big.make_source(work / f"memory-{mib}.bin", mib)
        measured = memory.peak_memory(work / f"memory-{mib}", source)
        found[mib] = asdict(measured)
        source.unlink()
        shutil.rmtree(work / f"memory-{mib}")
        rows.append(
            Row("memory", f"peak PSS, {memory.UPLOADS} × {size_label(mib)} uploads at once",
                measured.peak_pss_mib, "MiB",
                f"every process; VmHWM sum {measured.vm_hwm_sum_mib:.0f} MiB; "
                f"{measured.aggregate_mib_s:.0f} MiB/s in all",
                goal="< 300 MB", at_most_value=300 * 1e6 / 2**20)
        )  # fmt: skip
    figures["memory"] = found
    return rows


def versions() -> dict[str, Any]:
    import stowage as package

    def first_line(*command: str) -> str:
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "not found"
        return (out.stdout or out.stderr).strip().splitlines()[0]

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "stowage": package.__version__,
        "sqlite": sqlite3.sqlite_version,
        "seaweedfs": first_line(weed_binary(), "version"),
        "s5cmd": first_line(str(Path(sys.executable).parent / "s5cmd"), "version"),
        "curl": first_line("curl", "--version"),
        "postgresql": first_line("psql", "--version"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small, fast runs (< 2 min)")
    parser.add_argument("--dir", type=Path, default=RESULTS, help="where data lives during runs")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        sys.exit("curl is needed for the big-object benchmarks (apt install curl)")
    plan = Plan.make(args.quick)
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=args.dir))
    figures: dict[str, Any] = {}
    rows: list[Row] = []
    began = time.monotonic()
    try:
        s3 = SeaweedFS.start(work / "seaweedfs", buckets=(BUCKET,))
        try:
            sections = (
                ("big", big_rows),
                ("small", small_rows),
                ("s3", s3_rows),
                ("S3 API", s3_api_rows),
            )
            for name, section in sections:
                print(f"… {name} objects", file=sys.stderr)
                rows += section(plan, work, s3, figures)
        finally:
            s3.stop()
        print("… same client (wrk)", file=sys.stderr)
        rows += same_client_rows(plan, work, figures)
        print("… deduplication", file=sys.stderr)
        rows += dedup_rows(plan, work, figures)
        print("… listing", file=sys.stderr)
        rows += list_rows(plan, work, figures)
        print("… memory", file=sys.stderr)
        rows += memory_rows(plan, work, figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - began
    table = markdown(rows)
    print(f"\nstowage benchmark ({'quick' if args.quick else 'full'}, {elapsed:.0f} s)\n")
    print(table)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "seconds": elapsed,
        "machine": versions(),
        "plan": asdict(plan),
        "rows": [r.as_json() for r in rows],
        "figures": figures,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
