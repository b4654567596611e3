"""HTTP/1.1 by hand, for requests no client library will send: bytes that are not UTF-8
in the URL, a Content-Length that lies, a body that stops halfway."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class RawReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    base_url: str,
    method: str,
    target: str | bytes,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    then_close_writes: bool = False,
    timeout: float = 30,
) -> RawReply | None:
    """Send exactly these bytes and read one reply; None when the server closed without one.

    ``target`` is sent as is, so it may hold any byte; ``Content-Length`` is whatever
    ``headers`` says (the real body length when it says nothing).
    """
    fields = {"Host": "test", "Connection": "close", **(headers or {})}
    fields.setdefault("Content-Length", str(len(body)))
    path = target if isinstance(target, bytes) else target.encode()
    head = method.encode() + b" " + path + b" HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode() + b"\r\n"
    with socket.create_connection(("127.0.0.1", urlsplit(base_url).port), timeout=timeout) as s:
        s.sendall(head + body)
        if then_close_writes:
            s.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            if b"\r\n\r\n" in reply:
                top, rest = reply.split(b"\r\n\r\n", 1)
                lines = top.decode("latin-1").split("\r\n")
                parsed = dict(line.split(": ", 1) for line in lines[1:])
                parsed = {k.lower(): v for k, v in parsed.items()}
                if len(rest) >= int(parsed.get("content-length", "0")):
                    return RawReply(int(lines[0].split(" ", 2)[1]), parsed, rest)
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                return None
            if not data:
                return None
            reply += data


class KeepAlive:
    """One HTTP/1.1 connection, kept open across requests, so a test can tell when the
    server dropped it: ``request`` raises ``ConnectionDropped`` instead of reconnecting,
    which is what client libraries do behind a test's back."""

    def __init__(self, base_url: str, timeout: float = 30) -> None:
        port = urlsplit(base_url).port
        self._socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._buffer = b""

    def __enter__(self) -> KeepAlive:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._socket.close()

    def request(
        self,
        method: str,
        target: str | bytes,
        headers: dict[str, str | bytes] | None = None,
        body: bytes = b"",
    ) -> RawReply:
        fields: dict[str, str | bytes] = {"Host": "test", **(headers or {})}
        fields["Content-Length"] = str(len(body))
        path = target if isinstance(target, bytes) else target.encode()
        head = method.encode() + b" " + path + b" HTTP/1.1\r\n"
        for name, value in fields.items():
            head += name.encode() + b": " + (value if isinstance(value, bytes) else value.encode())
            head += b"\r\n"
        self._socket.sendall(head + b"\r\n" + body)
        top = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(top[0].split(" ", 2)[1])
        parsed = {k.lower(): v for k, v in (line.split(": ", 1) for line in top[1:])}
        if method == "HEAD" or status in (204, 304):
            payload = b""
        elif "content-length" in parsed:
            payload = self._read_exactly(int(parsed["content-length"]))
        elif parsed.get("transfer-encoding") == "chunked":
            payload = self._read_chunked()
        else:
            raise ConnectionDropped(f"{status} without a length: the body runs to the close")
        if parsed.get("connection", "").lower() == "close":
            raise ConnectionDropped(f"{method} {path[:80]!r}: {status} with Connection: close")
        return RawReply(status, parsed, payload)

    def _fill(self) -> None:
        try:
            data = self._socket.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            raise ConnectionDropped("the server closed the connection")
        self._buffer += data

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            self._fill()
        found, self._buffer = self._buffer.split(marker, 1)
        return found

    def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        found, self._buffer = self._buffer[:size], self._buffer[size:]
        return found

    def _read_chunked(self) -> bytes:
        body = b""
        while size := int(self._read_until(b"\r\n").split(b";")[0], 16):
            body += self._read_exactly(size)
            self._read_until(b"\r\n")
        self._read_until(b"\r\n")  # no trailers
        return body


class ConnectionDropped(Exception):
    """The server closed a keep-alive connection (or announced it would)."""
