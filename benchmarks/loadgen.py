"""A small HTTP/1.1 load generator on asyncio + uvloop, with keep-alive connections.

httpx spends more CPU per request than stowage does, so driving 4 KiB workloads with it
measured the client. This client writes pre-built request bytes and parses only the status
line and Content-Length (or chunked framing), which keeps it several times faster than the
server it drives; every run also measures its ceiling against a trivial endpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import uvloop


class HttpError(RuntimeError):
    pass


class Connection:
    """One keep-alive connection; requests on it run one after another."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> tuple[int, bytes]:
        head = [f"{method} {target} HTTP/1.1", "Host: bench"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method in ("POST", "PUT"):
            head.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return await self._response()

    async def _response(self) -> tuple[int, bytes]:
        block = await self.reader.readuntil(b"\r\n\r\n")
        lines = block.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, chunked = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return status, b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def expect(
        self,
        status: int,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> bytes:
        got, payload = await self.request(method, target, headers, body)
        if got != status:
            raise HttpError(f"{method} {target}: {got} {payload[:200]!r}")
        return payload

    def close(self) -> None:
        self.writer.close()


@dataclass
class Result:
    count: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


Step = Callable[[Connection, int], Awaitable[None]]


def target_of(url: str) -> str:
    """The request target (path and query) of an absolute URL, e.g. a presigned one."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def drive(base_url: str, step: Step, count: int, concurrency: int) -> Result:
    """Run ``step(conn, i)`` for i in range(count) over ``concurrency`` connections."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80

    async def main() -> Result:
        numbers: Iterator[int] = iter(range(count))
        latencies: list[float] = []
        connections = [await Connection.open(host, port) for _ in range(concurrency)]

        async def worker(conn: Connection) -> None:
            for i in numbers:
                began = time.perf_counter()
                await step(conn, i)
                latencies.append((time.perf_counter() - began) * 1000)

        try:
            start = time.perf_counter()
            await asyncio.gather(*(worker(c) for c in connections))
            return Result(count, time.perf_counter() - start, latencies)
        finally:
            for c in connections:
                c.close()

    return uvloop.run(main())
