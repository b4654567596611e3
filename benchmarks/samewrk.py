"""4 KiB objects with one compiled client for both sides: wrk (C, Debian's ``wrk``) drives
stowage and SeaweedFS's S3 gateway with the same Lua scripts, so neither figure is the
client's ceiling (s5cmd, the other SeaweedFS client here, tops out near 1,300 PUT/s).

SeaweedFS runs anonymous (no ``-s3.config``), so a plain ``PUT /bucket/key`` is accepted
and the same request shape serves both sides. Durability differs and is reported beside
the ratio: stowage answers a PUT once it is durable (a 4 KiB body lives in the database:
an fdatasync of its WAL); SeaweedFS does not fsync.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from stowage.seaweed import SeaweedFS

from .stack import StowageServer

SIZE = 4096
CONNECTIONS = 32
OBJECTS = 1000  # the set GETs and presigned PUTs cycle over

# Each request gets the next path from a file (one per line), cycling; a PUT or POST sends
# the 4 KiB body with its first 16 bytes replaced by the request's number, so that no two
# bodies are alike: stowage stores a repeated content once (deduplication), which would
# spare it the file writes and fsyncs SeaweedFS does for every PUT. One thread, so the
# counter needs no coordination.
SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local method = os.getenv("WRK_METHOD")
local body = nil
if os.getenv("WRK_BODY") ~= "" then
  local f = io.open(os.getenv("WRK_BODY"), "rb"); body = f:read("*a"); f:close()
end
local headers = {}
for pair in string.gmatch(os.getenv("WRK_HEADERS"), "[^\\n]+") do
  local name, value = pair:match("^([^:]+): (.*)$"); headers[name] = value
end
local i = 0
request = function()
  i = i + 1
  local sent = body and (string.format("%016x", i) .. body:sub(17))
  return wrk.format(method, paths[(i - 1) % #paths + 1], headers, sent)
end
"""


@dataclass
class WrkResult:
    per_second: float
    failed: int  # answers that were not 2xx, and socket errors


@dataclass
class SameClientFigures:
    djinn_put: WrkResult
    djinn_get: WrkResult
    presigned_put: WrkResult
    presigned_get: WrkResult
    seaweed_put: WrkResult
    seaweed_get: WrkResult


def wrk(
    base: str,
    work: Path,
    method: str,
    paths: list[str],
    seconds: int,
    headers: dict[str, str] | None = None,
    body: Path | None = None,
) -> WrkResult:
    """``wrk -t1 -c32`` for ``seconds`` against ``base``, one request per path in turn."""
    script, listing = work / "wrk.lua", work / "wrk-paths.txt"
    script.write_text(SCRIPT)
    listing.write_text("\n".join(paths) + "\n")
    env = {
        **os.environ,
        "WRK_PATHS": str(listing),
        "WRK_METHOD": method,
        "WRK_BODY": str(body) if body else "",
        "WRK_HEADERS": "\n".join(f"{k}: {v}" for k, v in (headers or {}).items()),
    }
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script), base]
    printed = subprocess.run(
        command, env=env, capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", printed)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{printed}")
    not_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", printed)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", printed
    )
    failed = int(not_2xx.group(1)) if not_2xx else 0
    failed += sum(int(n) for n in sockets.groups()) if sockets else 0
    return WrkResult(float(rate.group(1)), failed)


def measure(
    server: StowageServer, seaweed: SeaweedFS, bucket: str, work: Path, seconds: int
) -> SameClientFigures:
    work.mkdir(parents=True, exist_ok=True)
    body = work / "body.bin"
    body.write_bytes(os.urandom(SIZE))
    auth = server.headers
    names = [f"/objects?name=w-{i}" for i in range(200_000)]  # more than any run takes
    djinn_put = wrk(server.base, work, "POST", names, seconds, auth, body)
    with httpx.Client(base_url=server.base, headers=auth, timeout=60) as c:
        listed = c.get("/v1/objects", params={"limit": OBJECTS, "include_total_count": "false"})
        ids = [o["id"] for o in listed.json()["objects"]]
        created = [
            c.post("/v1/objects", json={"name": f"p-{i}", "content_type": "binary"}).json()
            for i in range(OBJECTS)
        ]
    accept = {**auth, "Accept": "application/octet-stream"}
    djinn_get = wrk(server.base, work, "GET", [f"/objects/{i}" for i in ids], seconds, accept)
    uploads = [o["upload_url"].removeprefix(server.base) for o in created]
    presigned_put = wrk(server.base, work, "PUT", uploads, seconds, body=body)
    with httpx.Client(base_url=server.base, headers=auth, timeout=60) as c:
        downloads = []
        for o in created:  # the ones the timed run reached (409: no bytes yet)
            if c.post(f"/v1/objects/{o['id']}/complete").status_code == 200:
                url = c.get(f"/v1/objects/{o['id']}/download").json()["download_url"]
                downloads.append(url.removeprefix(server.base))
    presigned_get = wrk(server.base, work, "GET", downloads, seconds)
    keys = [f"/{bucket}/w-{i}" for i in range(200_000)]
    seaweed_put = wrk(seaweed.endpoint, work, "PUT", keys, seconds, body=body)
    seaweed_get = wrk(seaweed.endpoint, work, "GET", keys[:OBJECTS], seconds)
    return SameClientFigures(
        djinn_put, djinn_get, presigned_put, presigned_get, seaweed_put, seaweed_get
    )
