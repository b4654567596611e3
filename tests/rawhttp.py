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
