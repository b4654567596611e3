"""``make bench``: stowage throughput beside baselines measured in the same run.

Baselines: the disk's own durable write speed (``dd conv=fdatasync``) on the filesystem that
holds stowage's data, and md5 + sha256 speed on one core (the work every upload must do).
Big transfers use curl so the client is not the bottleneck. Prints a markdown table and
writes ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from . import s3_mode
from .measure import curl_seconds

MIB = 1024 * 1024
RESULTS = Path(__file__).parent / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dd_fdatasync_mib_s(directory: Path, size_mib: int) -> float:
    target = directory / "dd-probe"
    start = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={size_mib}", "conv=fdatasync"],
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - start
    target.unlink()
    return size_mib / elapsed


def hash_mib_s(size_mib: int) -> float:
    """md5 then sha256 over the same buffer, as one upload does, on one core."""
    block = os.urandom(MIB)
    start = time.perf_counter()
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    for _ in range(size_mib):
        md5.update(block)
        sha.update(block)
    return size_mib / (time.perf_counter() - start)


class Server:
    """``stowage serve`` in its own process on a free loopback port."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            **(extra_env or {}),
            "STOWAGE_DATA_DIR": str(data_dir),
            "STOWAGE_PORT": str(self.port),
            "STOWAGE_LOG_LEVEL": "warning",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stowage.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("stowage did not start") from None
                time.sleep(0.05)
        token = (data_dir / "admin-token").read_text().strip()
        self.headers = {"Authorization": f"Bearer {token}"}

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def big_object_round(server: Server, source: Path, size_mib: int) -> tuple[float, float]:
    with httpx.Client(base_url=server.base, headers=server.headers) as c:
        created = c.post("/v1/objects", json={"name": "big.bin", "content_type": "binary"}).json()
        put_s = curl_seconds(["-T", str(source), created["upload_url"]])
        c.post(f"/v1/objects/{created['id']}/complete").raise_for_status()
        url = c.get(f"/v1/objects/{created['id']}/download").json()["download_url"]
        get_s = curl_seconds([url])
        c.post(f"/v1/objects/{created['id']}/delete").raise_for_status()
    return size_mib / put_s, size_mib / get_s


async def small_objects(server: Server, count: int, concurrency: int) -> tuple[float, float]:
    """Three-step flows per second, and the same client's ceiling in requests per second
    against a trivial endpoint (``/healthz``), so a client-bound figure is visible as such."""
    payload = os.urandom(4096)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=server.base, headers=server.headers, limits=limits, timeout=60
    ) as c:

        async def run(step: Any, n: int) -> float:
            queue = iter(range(n))

            async def worker() -> None:
                for i in queue:
                    await step(i)

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return n / (time.perf_counter() - start)

        async def flow(i: int) -> None:
            created = (
                await c.post("/v1/objects", json={"name": f"s{i}", "content_type": "binary"})
            ).json()
            (await c.put(created["upload_url"], content=payload)).raise_for_status()
            (await c.post(f"/v1/objects/{created['id']}/complete")).raise_for_status()

        async def trivial(_i: int) -> None:
            (await c.get("/healthz")).raise_for_status()

        return await run(flow, count), await run(trivial, count * 3)


def print_s3(s3: dict[str, Any], size_mib: int) -> None:
    print("\nS3 mode: stowage (PostgreSQL + SeaweedFS, Djinn dialect) beside SeaweedFS + s5cmd\n")
    if "skipped" in s3:
        print(f"skipped: {s3['skipped']}")
        return
    print("| workload | stowage on SeaweedFS | SeaweedFS direct (s5cmd) | ratio |")
    print("|---|---:|---:|---:|")
    rows = [
        (f"{size_mib} MiB PUT, MiB/s", "stowage_put_mib_s", "seaweedfs_put_mib_s"),
        (f"{size_mib} MiB GET, MiB/s", "stowage_get_mib_s", "seaweedfs_get_mib_s"),
        ("4 KiB PUT/s (32 in flight)", "stowage_small_put_s", "seaweedfs_small_put_s"),
        ("4 KiB GET/s (32 in flight)", "stowage_small_get_s", "seaweedfs_small_get_s"),
    ]
    for label, ours, theirs in rows:
        print(f"| {label} | {s3[ours]:.0f} | {s3[theirs]:.0f} | {s3[ours] / s3[theirs]:.2f} |")


def machine() -> dict[str, Any]:
    import stowage

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "stowage": stowage.__version__,
        "curl": subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split(
            "\n"
        )[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller, faster runs")
    parser.add_argument("--dir", type=Path, default=RESULTS, help="where data lives during runs")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        sys.exit("curl is needed for the big-object benchmarks")

    size_mib = 64 if args.quick else 256
    rounds = 1 if args.quick else 3
    small_count = 300 if args.quick else 2000
    concurrency = 16
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=args.dir))
    try:
        source = work / "source.bin"
        with open(source, "wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(MIB))
        # This VM's disk swings between ~0.4 and ~2 GB/s under fdatasync: take 5 samples.
        dd_samples = [dd_fdatasync_mib_s(work, size_mib) for _ in range(5)]
        dd = statistics.median(dd_samples)
        hashing = hash_mib_s(size_mib)
        server = Server(work / "data")
        try:
            runs = [big_object_round(server, source, size_mib) for _ in range(rounds)]
            put = statistics.median(r[0] for r in runs)
            get = statistics.median(r[1] for r in runs)
            small, ceiling = asyncio.run(small_objects(server, small_count, concurrency))
        finally:
            server.stop()
        s3 = s3_mode.run(work, source, size_mib, small_count // 2, Server)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = [
        (f"{size_mib} MiB presigned PUT (md5+sha256, fsync)", put, "MiB/s", "dd fdatasync", dd),
        (f"{size_mib} MiB presigned GET", get, "MiB/s", "dd fdatasync", dd),
        ("md5 + sha256 on one core", hashing, "MiB/s", "", None),
        (
            f"4 KiB create+upload+complete, {concurrency} clients",
            small,
            "objects/s",
            "client ceiling, req/s ÷ 3",
            ceiling / 3,
        ),
    ]
    print(f"\nstowage benchmark ({'quick' if args.quick else 'full'}; median of {rounds})")
    print(f"dd fdatasync samples (MiB/s): {', '.join(f'{x:.0f}' for x in dd_samples)}\n")
    print("| workload | stowage | unit | baseline | baseline value | ratio |")
    print("|---|---:|---|---|---:|---:|")
    for name, value, unit, base_name, base in rows:
        ratio = f"{value / base:.2f}" if base else ""
        base_text = f"{base:.0f}" if base else ""
        print(f"| {name} | {value:.0f} | {unit} | {base_name} | {base_text} | {ratio} |")
    print_s3(s3, size_mib)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "machine": machine(),
        "object_mib": size_mib,
        "rounds": rounds,
        "figures": {
            "put_mib_s": put,
            "get_mib_s": get,
            "dd_fdatasync_mib_s": dd,
            "dd_fdatasync_samples_mib_s": dd_samples,
            "put_samples_mib_s": [r[0] for r in runs],
            "get_samples_mib_s": [r[1] for r in runs],
            "client_ceiling_req_s": ceiling,
            "md5_sha256_mib_s": hashing,
            "small_objects_per_s": small,
            "small_objects": small_count,
            "small_concurrency": concurrency,
        },
        "s3": s3,
        "ratios": {
            "put_vs_dd": put / dd,
            "get_vs_dd": get / dd,
            "small_vs_client_ceiling": small / (ceiling / 3),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
