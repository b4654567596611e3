"""Real S3 clients, unchanged, against ``stowage serve``'s S3 API on both backends, run as
CI jobs and operators run them: aws-cli (``make awscli`` puts it in a venv of its own),
rclone with ListObjects V1 and V2, s5cmd, boto3's transfer manager with and without its
default checksums; and what one of them writes, read through the Djinn API and the Runloop
SDK, and back. Each client decides on its own how to split, sign and list: the tests
check what a user would, the bytes and names that come back."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.client import BaseClient
from runloop_api_client import Runloop

from .harness import listed_with_digests
from .test_s3_api import S3Server, key, s3, s3_server

__all__ = ["key", "s3", "s3_server"]  # the fixtures this module shares

MIB = 1024 * 1024
TOOLS = Path(sys.executable).parent  # s5cmd and rclone come with the test extras
AWS = TOOLS.parent / "awscli" / "bin" / "aws"  # see the Makefile's awscli target


@dataclass
class Cli:
    """A command-line client with its environment and arguments that every call takes."""

    command: list[str]
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 120) -> str:
        """Runs it and returns what it printed; a failure fails the test with its stderr."""
        done = self.run(*args, timeout=timeout)
        assert done.returncode == 0, f"{args}: {done.stderr[-3000:]}"
        return done.stdout

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )


def tool_env(key: tuple[str, str], home: Path) -> dict[str, str]:
    """The environment a command-line client runs in with this key: the AWS variables
    every SDK reads, and empty config files of its own under ``home`` so that nothing in
    the host's ~/.aws (a profile, a region, an endpoint) decides what is tested."""
    empty = home / "aws-config"
    empty.touch()
    return {
        **os.environ,
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": key[0],
        "AWS_SECRET_ACCESS_KEY": key[1],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
    }


@pytest.fixture
def aws(s3_server: S3Server, key: tuple[str, str], tmp_path: Path) -> Cli:
    if not AWS.exists():
        pytest.fail(f"no aws-cli at {AWS}: `make awscli` installs it (make test does)")
    home = tmp_path / "home"
    home.mkdir()
    return Cli([str(AWS), "--endpoint-url", s3_server.endpoint], tool_env(key, home))


@pytest.fixture
def s5cmd(s3_server: S3Server, key: tuple[str, str], tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    command = [str(TOOLS / "s5cmd"), "--endpoint-url", s3_server.endpoint]
    return Cli(command, tool_env(key, home))


def write_tree(root: Path) -> dict[str, bytes]:
    """A tree as CI artifacts look: nested directories, an empty file, a file of a few
    MiB, and names in several scripts and with spaces. Returns it by relative path."""
    files = {
        "top.txt": b"top\n",
        "a/one.txt": b"one\n",
        "a/b/c/deep.txt": b"deep\n",
        "a/empty": b"",
        "a/big.bin": os.urandom(12 * MIB + 17),
        "ünï/ﬁ 日本/файл ü.txt": "é\n".encode(),
        "with space/x+y=z.txt": b"sum\n",
    }
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# aws-cli


def ls(aws: Cli, *args: str) -> dict[str, int | None]:
    """What ``aws s3 ls`` shows: each key's size, and each common prefix (``PRE``) with
    None."""
    shown: dict[str, int | None] = {}
    for line in aws("s3", "ls", *args).splitlines():
        if line.lstrip().startswith("PRE "):
            shown[line.split("PRE ", 1)[1]] = None
        else:
            _, _, size, name = line.split(maxsplit=3)
            shown[name] = int(size)
    return shown


def test_aws_cli_copies_a_multipart_file_up_and_back(
    aws: Cli, s3: BaseClient, tmp_path: Path
) -> None:
    """20 MiB is past aws-cli's 8 MiB multipart threshold: three parts up, ranged GETs
    down."""
    aws("s3", "mb", "s3://aws-cp")
    source, back = tmp_path / "build.tgz", tmp_path / "back.tgz"
    source.write_bytes(os.urandom(20 * MIB))
    aws("s3", "cp", "--no-progress", str(source), "s3://aws-cp/nightly/build.tgz")
    assert s3.head_object(Bucket="aws-cp", Key="nightly/build.tgz")["ETag"].endswith('-3"')
    aws("s3", "cp", "--no-progress", "s3://aws-cp/nightly/build.tgz", str(back))
    assert back.read_bytes() == source.read_bytes()


def test_aws_cli_syncs_both_ways_and_then_has_nothing_to_do(aws: Cli, tmp_path: Path) -> None:
    source, back = tmp_path / "up", tmp_path / "down"
    files = write_tree(source)
    aws("s3", "mb", "s3://aws-sync")
    uploaded = aws("s3", "sync", "--no-progress", str(source), "s3://aws-sync/tree")
    assert len(uploaded.splitlines()) == len(files)
    assert aws("s3", "sync", "--no-progress", str(source), "s3://aws-sync/tree") == ""

    downloaded = aws("s3", "sync", "--no-progress", "s3://aws-sync/tree", str(back))
    assert len(downloaded.splitlines()) == len(files)
    assert read_tree(back) == files
    assert aws("s3", "sync", "--no-progress", "s3://aws-sync/tree", str(back)) == ""

    assert "aws-sync" in aws("s3", "ls").split()
    shown = ls(aws, "--recursive", "s3://aws-sync")
    assert shown == {f"tree/{name}": len(body) for name, body in files.items()}


LISTED_KEYS = ["p/a/1", "p/a/2", "p/b", "p/c/x/1", "p/d", "p/é", "q"]


@pytest.mark.parametrize("operation", ["list-objects", "list-objects-v2"])
def test_aws_cli_lists_with_a_delimiter_and_pages(aws: Cli, s3: BaseClient, operation: str) -> None:
    bucket = f"aws-{operation}"
    aws("s3", "mb", f"s3://{bucket}")
    for name in LISTED_KEYS:
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode())

    def listing(*args: str) -> dict[str, Any]:
        return json.loads(aws("s3api", operation, "--bucket", bucket, "--output", "json", *args))

    rolled = listing("--delimiter", "/", "--prefix", "p/")
    assert [o["Key"] for o in rolled["Contents"]] == ["p/b", "p/d", "p/é"]
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["p/a/", "p/c/"]

    keys, prefixes, calls = [], [], 0
    token: list[str] = []
    while True:
        page = listing(
            "--delimiter", "/", "--prefix", "p/", "--max-items", "2", "--page-size", "1", *token
        )
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        calls += 1
        if not page.get("NextToken"):
            break
        token = ["--starting-token", page["NextToken"]]
    assert (keys, prefixes) == (["p/b", "p/d", "p/é"], ["p/a/", "p/c/"]) and calls > 1

    everything = listing("--page-size", "2")
    assert [o["Key"] for o in everything["Contents"]] == LISTED_KEYS


def test_an_aws_cli_presigned_url_is_a_plain_http_get(aws: Cli, tmp_path: Path) -> None:
    aws("s3", "mb", "s3://aws-presign")
    source = tmp_path / "report.html"
    source.write_bytes(b"<p>green</p>")
    aws("s3", "cp", "--no-progress", str(source), "s3://aws-presign/ci/run 7/report.html")
    url = aws("s3", "presign", "--expires-in", "300", "s3://aws-presign/ci/run 7/report.html")
    assert httpx.get(url.strip()).content == b"<p>green</p>"
    assert httpx.get(url.strip().replace("run%207", "run%208")).status_code == 403


def test_aws_cli_removes_recursively_then_removes_the_bucket(aws: Cli, tmp_path: Path) -> None:
    write_tree(tmp_path / "up")
    aws("s3", "mb", "s3://aws-rm")
    aws("s3", "sync", "--no-progress", str(tmp_path / "up"), "s3://aws-rm/")
    full = aws.run("s3", "rb", "s3://aws-rm")
    assert full.returncode != 0 and "BucketNotEmpty" in full.stderr
    aws("s3", "rm", "--recursive", "s3://aws-rm/a/")
    assert ls(aws, "s3://aws-rm/") == {"top.txt": 4, "ünï/": None, "with space/": None}
    aws("s3", "rm", "--recursive", "s3://aws-rm")
    assert ls(aws, "--recursive", "s3://aws-rm") == {}
    aws("s3", "rb", "s3://aws-rm")
    assert "aws-rm" not in aws("s3", "ls").split()


# rclone


@pytest.fixture(params=["Other", "Minio"])
def rclone(
    request: pytest.FixtureRequest, s3_server: S3Server, key: tuple[str, str], tmp_path: Path
) -> Cli:
    """A remote ``x:`` configured only by environment, as rclone's docs show for S3 stores
    that are not AWS: ``Other`` lists with ListObjects V1, ``Minio`` with V2. Parts of
    5 MiB above 5 MiB, so that the tree's big file goes multipart."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "rclone.conf").touch()
    remote = {
        "TYPE": "s3",
        "PROVIDER": request.param,
        "ENDPOINT": s3_server.endpoint,
        "ACCESS_KEY_ID": key[0],
        "SECRET_ACCESS_KEY": key[1],
        "FORCE_PATH_STYLE": "true",
        "UPLOAD_CUTOFF": "5Mi",
        "CHUNK_SIZE": "5Mi",
    }
    if request.param == "Other":
        remote["LIST_VERSION"] = "1"
    env = {
        **tool_env(key, home),
        "RCLONE_CONFIG": str(home / "rclone.conf"),
        **{f"RCLONE_CONFIG_X_{name}": value for name, value in remote.items()},
    }
    return Cli([str(TOOLS / "rclone")], env)


def test_rclone_copies_syncs_and_checks_a_tree(rclone: Cli, tmp_path: Path) -> None:
    source = tmp_path / "up"
    files = write_tree(source)
    bucket = "rclone-" + rclone.env["RCLONE_CONFIG_X_PROVIDER"].lower()
    rclone("mkdir", f"x:{bucket}")
    rclone("copy", str(source), f"x:{bucket}/tree")
    dirs = {str(parent) + "/" for name in files for parent in Path(name).parents if parent.name}
    assert set(rclone("lsf", "-R", f"x:{bucket}/tree").splitlines()) == set(files) | dirs

    checked = rclone.run("check", str(source), f"x:{bucket}/tree")
    assert checked.returncode == 0, checked.stderr
    assert "0 differences found" in checked.stderr
    assert f"{len(files)} matching files" in checked.stderr
    md5s = dict(
        line.split("  ", 1)[::-1] for line in rclone("md5sum", f"x:{bucket}/tree").splitlines()
    )
    assert md5s == {name: hashlib.md5(body).hexdigest() for name, body in files.items()}

    (source / "a" / "one.txt").unlink()
    (source / "new.txt").write_bytes(b"new\n")
    rclone("sync", str(source), f"x:{bucket}/tree")
    listed = rclone("lsf", "-R", "--files-only", f"x:{bucket}/tree").splitlines()
    assert sorted(listed) == sorted(set(files) - {"a/one.txt"} | {"new.txt"})
    assert "0 differences found" in rclone.run("check", str(source), f"x:{bucket}/tree").stderr

    back = tmp_path / "down"
    rclone("copy", f"x:{bucket}/tree", str(back))
    assert read_tree(back) == read_tree(source)


# s5cmd


def test_s5cmd_copies_two_thousand_small_objects_up_and_back(
    s5cmd: Cli, s3: BaseClient, tmp_path: Path
) -> None:
    """s5cmd (Go, aws-sdk-go) with 32 workers: 2,000 × 4 KiB up, listed, and down."""
    s3.create_bucket(Bucket="s5cmd")
    source, back = tmp_path / "up", tmp_path / "down"
    source.mkdir()
    for i in range(2000):
        (source / f"f{i:04d}.bin").write_bytes(os.urandom(4096))
    s5cmd("--numworkers", "32", "cp", f"{source}/*", "s3://s5cmd/small/")
    assert len(s5cmd("ls", "s3://s5cmd/small/*").splitlines()) == 2000
    s5cmd("--numworkers", "32", "cp", "s3://s5cmd/small/*", f"{back}/")
    assert read_tree(back) == read_tree(source)


GIB = 1024 * MIB


def write_gib(path: Path) -> str:
    """1 GiB of incompressible bytes, written fast (16 random MiB repeated out of step
    with s5cmd's 50 MiB parts), without holding it in memory; returns its sha256."""
    blocks = [os.urandom(MIB) for _ in range(16)]
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for i in range(GIB // MIB):
            block = blocks[(i * 7) % len(blocks)]
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.timeout(600)
def test_s5cmd_copies_a_gib_multipart_up_and_back(
    s5cmd: Cli, s3: BaseClient, tmp_path: Path
) -> None:
    """s5cmd's default 50 MiB parts, five at a time: 21 parts up, ranged GETs down."""
    s3.create_bucket(Bucket="s5cmd-gib")
    source, back = tmp_path / "gib.bin", tmp_path / "back.bin"
    expected = write_gib(source)
    s5cmd("cp", str(source), "s3://s5cmd-gib/gib.bin", timeout=240)
    head = s3.head_object(Bucket="s5cmd-gib", Key="gib.bin")
    assert (head["ContentLength"], head["ETag"][-4:]) == (GIB, '-21"')
    source.unlink()
    s5cmd("cp", "s3://s5cmd-gib/gib.bin", str(back), timeout=240)
    assert sha256_of(back) == expected


# boto3


@pytest.mark.parametrize("checksums", ["when_supported", "when_required"])
@pytest.mark.parametrize("size", [1000, 9 * MIB])
def test_boto3_transfers_with_and_without_default_checksums(
    s3_server: S3Server, key: tuple[str, str], checksums: str, size: int
) -> None:
    """boto3 ≥ 1.36 sends a CRC32 of every upload (of each part past its 8 MiB threshold)
    and checks the one a download comes with; ``when_required`` does neither. The bytes
    must come back either way, whole and ranged."""
    s3 = s3_server.client(
        *key, request_checksum_calculation=checksums, response_checksum_validation=checksums
    )
    bucket = f"boto3-{checksums.replace('_', '-')}-{size}"
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(size)
    s3.upload_fileobj(io.BytesIO(body), bucket, "file.bin")
    multipart = s3.head_object(Bucket=bucket, Key="file.bin")["ETag"].endswith('-2"')
    assert multipart == (size > 8 * MIB)
    back = io.BytesIO()
    s3.download_fileobj(bucket, "file.bin", back)
    assert back.getvalue() == body
    ranged = s3.get_object(Bucket=bucket, Key="file.bin", Range="bytes=100-199")["Body"].read()
    assert ranged == body[100:200]


# Across dialects


def test_what_aws_cli_writes_djinn_and_the_runloop_sdk_read_and_back(
    s3_server: S3Server, aws: Cli, tmp_path: Path
) -> None:
    """A multipart upload's object as Djinn and Runloop show it, md5 and sha256 of the
    whole; and a Djinn upload into the bucket's namespace, downloaded by aws-cli."""
    aws("s3", "mb", "s3://crossing")
    source = tmp_path / "artifact.bin"
    body = os.urandom(9 * MIB + 5)
    source.write_bytes(body)
    aws("s3", "cp", "--no-progress", str(source), "s3://crossing/ci/artifact.bin")

    auth = {"Authorization": f"Bearer {s3_server.token}"}
    with httpx.Client(base_url=s3_server.base, headers=auth) as djinn:
        shown = listed_with_digests(djinn, "/n/admin/crossing/-/objects", "ci/artifact.bin")
        assert (shown["name"], shown["size"], shown["md5"], shown["sha256"]) == (
            "ci/artifact.bin",
            len(body),
            hashlib.md5(body).hexdigest(),
            hashlib.sha256(body).hexdigest(),
        )
        put = djinn.post(
            "/objects", params={"name": "notes.txt", "namespace": "crossing"}, content=b"hi\n"
        )
        assert put.status_code == 201, put.text

    runloop = Runloop(base_url=s3_server.base, bearer_token=s3_server.token)
    retrieved = runloop.objects.retrieve(shown["object_id"])
    assert (retrieved.name, retrieved.state, retrieved.size_bytes) == (
        "ci/artifact.bin",
        "READ_ONLY",
        len(body),
    )
    url = runloop.objects.download(retrieved.id, duration_seconds=60).download_url
    assert httpx.get(url).content == body

    assert aws("s3", "cp", "s3://crossing/notes.txt", "-") == "hi\n"
    assert ls(aws, "s3://crossing/") == {"ci/": None, "notes.txt": 3}
