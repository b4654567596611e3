"""SIGTERM lets in-flight uploads finish (up to STOWAGE_SHUTDOWN_TIMEOUT_SECONDS)."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from stowage.processes import start_serve


def test_sigterm_finishes_the_upload_in_flight(tmp_path: Path) -> None:
    process, base = start_serve(tmp_path)
    token = (tmp_path / "admin-token").read_text().strip()
    first_sent, terminated = threading.Event(), threading.Event()
    chunk = os.urandom(256 * 1024)

    def body() -> Iterator[bytes]:
        yield chunk
        first_sent.set()
        assert terminated.wait(30)  # the rest goes out after SIGTERM
        for _ in range(7):
            yield chunk

    result: dict[str, httpx.Response] = {}

    def upload() -> None:
        result["r"] = httpx.post(
            f"{base}/objects",
            params={"name": "late.bin"},
            content=body(),
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert first_sent.wait(30)
    process.send_signal(signal.SIGTERM)
    terminated.set()
    uploader.join(60)
    assert result["r"].status_code == 201, result["r"].text
    assert result["r"].json()["sha256"] == hashlib.sha256(chunk * 8).hexdigest()
    # uvicorn re-raises SIGTERM once drained, so the exit status says what stopped it.
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
