"""Crash safety: SIGKILL stowage in the middle of 100 concurrent uploads, several times;
and in the middle of S3 multipart uploads.

After each restart every upload that was acknowledged (2xx) is present with the right
sha256, nothing visible is torn, objects left UPLOADING can still be completed, and in the
end ``stowage fsck`` leaves a clean store. The kill points come from a seeded generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from stowage.processes import free_port, wait_healthy

from .backends import BACKENDS, backend_settings
from .harness import create_s3_key

ROUNDS = 3
UPLOADS = 100


@dataclass
class Ledger:
    """What the server acknowledged, and what it still owes us."""

    djinn: dict[int, str] = field(default_factory=dict)  # object id → sha256
    runloop: dict[str, str] = field(default_factory=dict)  # completed public id → sha256
    pending: dict[str, str] = field(default_factory=dict)  # created, not completed → upload url

    @property
    def acknowledged(self) -> int:
        return len(self.djinn) + len(self.runloop)


@dataclass
class Node:
    env: dict[str, str]
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.env['STOWAGE_PORT']}"

    def start(self) -> None:
        log = open(self.data_dir.parent / "server.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stowage.cli", "serve"], env=self.env, stdout=log, stderr=log
        )
        log.close()
        wait_healthy(self.base, self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@pytest.fixture(params=BACKENDS)
def node(request: pytest.FixtureRequest, tmp_path: Path, pg_base_url: str | None) -> Iterator[Node]:
    with backend_settings(request.param, request, pg_base_url) as settings:
        env = {f"STOWAGE_{k.upper()}": v for k, v in settings.items()}
        env.update(
            {
                **os.environ,
                **env,
                "STOWAGE_DATA_DIR": str(tmp_path / "data"),
                "STOWAGE_PORT": str(free_port()),
                "STOWAGE_LOG_LEVEL": "warning",
            }
        )
        n = Node(env, tmp_path / "data")
        try:
            yield n
        finally:
            if n.process and n.process.poll() is None:
                n.kill()


async def upload_storm(
    node: Node, headers: dict[str, str], rng: random.Random, ledger: Ledger, twins: list[bytes]
) -> None:
    """100 uploads at once, half per dialect; the server is killed part way through. With
    ``twins``, every other upload sends one of those bodies: it shares a stored blob, or
    races its twins to store it first."""
    # Cut after a seeded number of acknowledgements rather than a time, so the kill lands
    # mid-storm on the fast backend and the slow one alike.
    cut, cut_at = asyncio.Event(), ledger.acknowledged + rng.randint(5, 80)

    def acknowledged(ids: dict, key: object, data: bytes) -> None:
        ids[key] = hashlib.sha256(data).hexdigest()
        if ledger.acknowledged >= cut_at:
            cut.set()

    async with httpx.AsyncClient(base_url=node.base, headers=headers, timeout=30) as c:

        async def djinn(i: int, data: bytes) -> None:
            r = await c.post("/objects", params={"name": f"d{rng.random():.12f}"}, content=data)
            if r.status_code == 201:
                acknowledged(ledger.djinn, r.json()["id"], data)

        async def runloop(i: int, data: bytes) -> None:
            r = await c.post("/v1/objects", json={"name": f"r{i}", "content_type": "binary"})
            if r.status_code != 200:
                return
            created = r.json()
            ledger.pending[created["id"]] = created["upload_url"]
            put = await c.put(created["upload_url"], content=data, headers={"Authorization": ""})
            if put.status_code != 200:
                return
            done = await c.post(f"/v1/objects/{created['id']}/complete")
            if done.status_code == 200:
                acknowledged(ledger.runloop, created["id"], data)
                ledger.pending.pop(created["id"], None)

        async def guarded(job: object) -> None:
            # The server dying under us means this upload was never acknowledged.
            with contextlib.suppress(httpx.TransportError):
                await job  # type: ignore[misc]

        jobs = []
        for i in range(UPLOADS):
            data = rng.randbytes(rng.randint(1, 768 * 1024))
            if twins and i % 4 < 2:
                data = rng.choice(twins)
            jobs.append(guarded((djinn if i % 2 else runloop)(i, data)))

        async def storm() -> None:
            await asyncio.gather(*jobs)
            cut.set()  # everything finished before the cut: kill anyway

        async def killer() -> None:
            await cut.wait()
            node.kill()

        await asyncio.gather(killer(), storm())


@pytest.mark.parametrize("shared", [False, True], ids=["distinct", "deduplicated"])
def test_sigkill_during_uploads_never_loses_or_tears_an_object(node: Node, shared: bool) -> None:
    """Deduplicated: half the uploads carry one of eight bodies, so the kills land among
    uploads that drop their copy for a stored blob or race to store it; in the end every
    acknowledged twin reads whole and fsck finds no blob its objects disagree about."""
    rng = random.Random(20261124)
    ledger = Ledger()
    twins = [rng.randbytes(rng.randint(1, 768 * 1024)) for _ in range(8)] if shared else []
    node.start()
    headers = {"Authorization": f"Bearer {(node.data_dir / 'admin-token').read_text().strip()}"}
    for _ in range(ROUNDS):
        asyncio.run(upload_storm(node, headers, rng, ledger, twins))
        node.start()
    with httpx.Client(base_url=node.base, headers=headers, timeout=30) as c:
        octets = {"Accept": "application/octet-stream"}
        for object_id, sha in ledger.djinn.items():
            got = c.get(f"/objects/{object_id}", headers=octets)
            assert hashlib.sha256(got.content).hexdigest() == sha, object_id
        for public_id, sha in ledger.runloop.items():
            assert c.get(f"/v1/objects/{public_id}").json()["state"] == "READ_ONLY"
            url = c.get(f"/v1/objects/{public_id}/download").json()["download_url"]
            assert hashlib.sha256(httpx.get(url).content).hexdigest() == sha, public_id
        page, visible = 1, []
        while batch := c.get("/objects", params={"page": page}).json():
            visible += batch
            page += 1
        for obj in visible:  # everything a client can see is whole
            body = c.get(f"/objects/{obj['id']}", headers=octets).content
            assert hashlib.sha256(body).hexdigest() == obj["sha256"], obj["id"]
        finishing = list(ledger.pending.items())[:10]
        for public_id, upload_url in finishing:  # survivors in UPLOADING can still finish
            state = c.get(f"/v1/objects/{public_id}")
            if state.status_code == 200 and state.json()["state"] == "UPLOADING":
                assert httpx.put(upload_url, content=b"finished later").status_code == 200
                assert c.post(f"/v1/objects/{public_id}/complete").status_code == 200
    acknowledged = ledger.acknowledged
    assert 0 < acknowledged < ROUNDS * UPLOADS, "the kills must land mid-storm"
    print(  # the figures for a report: pytest -s -k sigkill
        f"{ROUNDS} kills during {ROUNDS * UPLOADS} uploads: {acknowledged} acknowledged and "
        f"found intact, {len(visible)} visible objects re-hashed"
    )
    node.kill()
    fix = subprocess.run(
        [sys.executable, "-m", "stowage.cli", "fsck", "--verify", "--fix", "--grace", "0"],
        env=node.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fix.returncode == 0, fix.stdout + fix.stderr
    again = subprocess.run(
        [sys.executable, "-m", "stowage.cli", "fsck", "--grace", "0"],
        env=node.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0 and "clean" in again.stdout, again.stdout


MIB = 1024 * 1024
MULTIPART_UPLOADS = 16
CLI = [sys.executable, "-m", "stowage.cli"]
SCOPES = "object:read,write,delete namespace:read,write,delete"


@dataclass
class MultipartLedger:
    """What the S3 API acknowledged of multipart uploads."""

    objects: dict[str, str] = field(default_factory=dict)  # completed key → sha256
    parts: dict[str, dict[int, tuple[str, bytes]]] = field(default_factory=dict)  # id → parts
    open: dict[str, str] = field(default_factory=dict)  # started, not completed: id → key


def s3_client(node: Node) -> BaseClient:
    key_id, secret = create_s3_key(node.env, "admin", SCOPES)
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{node.env['STOWAGE_S3_API_PORT']}",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def multipart_storm(node: Node, s3: BaseClient, seed: int, ledger: MultipartLedger) -> None:
    """Multipart uploads of two parts each, six at a time; the server is killed after a
    seeded number of them completed."""
    cut_at = len(ledger.objects) + random.Random(seed).randint(2, 8)
    lock = threading.Lock()

    def one(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        key = f"s{seed}-{i}"
        started = s3.create_multipart_upload(Bucket="crash", Key=key)["UploadId"]
        upload = {"Bucket": "crash", "Key": key, "UploadId": started}
        with lock:
            ledger.open[started] = key
        for number, body in ((1, rng.randbytes(5 * MIB)), (2, rng.randbytes(1000))):
            tag = s3.upload_part(**upload, PartNumber=number, Body=body)["ETag"]
            with lock:
                ledger.parts.setdefault(started, {})[number] = (tag, body)
        chosen = [{"PartNumber": n, "ETag": t} for n, (t, _) in ledger.parts[started].items()]
        s3.complete_multipart_upload(**upload, MultipartUpload={"Parts": chosen})
        whole = b"".join(b for _, b in ledger.parts[started].values())
        with lock:
            ledger.objects[key] = hashlib.sha256(whole).hexdigest()
            del ledger.open[started]
            if len(ledger.objects) == cut_at:
                node.kill()

    def guarded(i: int) -> None:
        # The server dying under us means this step was never acknowledged.
        with contextlib.suppress(BotoCoreError, ClientError):
            one(i)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(guarded, range(MULTIPART_UPLOADS)))
    if node.process is not None and node.process.poll() is None:
        node.kill()  # everything finished before the cut: kill anyway


def test_sigkill_during_multipart_uploads_loses_no_acknowledged_part(node: Node) -> None:
    """Acknowledged parts survive in their upload, which can still be completed; completed
    objects are whole; and what the kills left fsck accounts for (on S3: the store's own
    multipart uploads too)."""
    node.env["STOWAGE_S3_API_PORT"] = str(free_port())
    node.start()
    s3 = s3_client(node)
    s3.create_bucket(Bucket="crash")
    ledger = MultipartLedger()
    for seed in (1, 2):
        multipart_storm(node, s3, seed, ledger)
        node.start()
    assert 0 < len(ledger.objects) < 2 * MULTIPART_UPLOADS, "the kills must land mid-storm"
    for key, sha in ledger.objects.items():
        got = s3.get_object(Bucket="crash", Key=key)["Body"].read()
        assert hashlib.sha256(got).hexdigest() == sha, key
    for upload_id, key in ledger.open.items():
        acknowledged = ledger.parts.get(upload_id, {})
        upload = {"Bucket": "crash", "Key": key, "UploadId": upload_id}
        try:
            listed = s3.list_parts(**upload).get("Parts", [])
        except ClientError:  # NoSuchUpload: completed, and the answer lost to the kill
            got = s3.get_object(Bucket="crash", Key=key)["Body"].read()
            assert got == b"".join(b for _, b in acknowledged.values()), key
            continue
        assert {n: t for n, (t, _) in acknowledged.items()}.items() <= {
            p["PartNumber"]: p["ETag"] for p in listed
        }.items(), key
        if len(acknowledged) == 2:  # survivors can still be completed
            chosen = [{"PartNumber": n, "ETag": t} for n, (t, _) in acknowledged.items()]
            s3.complete_multipart_upload(**upload, MultipartUpload={"Parts": chosen})
            got = s3.get_object(Bucket="crash", Key=key)["Body"].read()
            assert got == b"".join(b for _, b in acknowledged.values()), key
    node.kill()
    fsck = [*CLI, "fsck", "--grace", "0"]
    fix = subprocess.run([*fsck, "--fix"], env=node.env, capture_output=True, text=True)
    assert fix.returncode == 0, fix.stdout + fix.stderr
    print(  # the figures for a report: pytest -s -k sigkill_during_multipart
        f"2 kills during {2 * MULTIPART_UPLOADS} multipart uploads: {len(ledger.objects)} "
        f"completed and intact, {len(ledger.open)} left open; fsck --fix: {fix.stdout!r}"
    )
    again = subprocess.run(fsck, env=node.env, capture_output=True, text=True)
    assert again.returncode == 0 and "clean" in again.stdout, again.stdout
