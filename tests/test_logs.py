"""Structured JSON logs with the request id; tokens and signatures stay out of them."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx

from stowage.processes import start_serve


def test_json_access_lines_carry_the_request_id_and_no_secrets(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        process, base = start_serve(tmp_path / "data", log_level="info", stderr=out)
    try:
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}", "X-Request-Id": "trace-me-42"}
        created = httpx.post(
            f"{base}/v1/objects", json={"name": "l", "content_type": "text"}, headers=headers
        ).json()
        httpx.put(created["upload_url"], content=b"logged").raise_for_status()
        httpx.get(f"{base}/v1/objects/obj_nope", headers={"Authorization": "Bearer stw_wrong"})
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [e for e in lines if e["logger"] == "stowage.access"]
    mine = [e for e in access if e.get("request_id") == "trace-me-42"]
    assert len(mine) == 1
    assert mine[0]["route"] == "/v1/objects" and mine[0]["status"] == 200
    assert mine[0]["method"] == "POST" and mine[0]["duration_ms"] >= 0
    put = next(e for e in access if e["method"] == "PUT")
    assert put["bytes_received"] == len(b"logged") and put["path"].startswith("/blobs/obj_")
    assert any(e["status"] == 401 for e in access)
    text = log.read_text()
    signature = created["upload_url"].split("signature=")[1]
    for secret in (token, "stw_wrong", signature):
        assert secret not in text
