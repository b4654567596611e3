"""A loopback TCP proxy that a test can block and unblock, to take a dependency away
(PostgreSQL, S3) and give it back without touching the real service, or tell to lose the
next answers, as a network does after the server has done the work."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.blocked = False
        self.answers_to_lose = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
            self._ready.set()
            await self._server.serve_forever()

        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(serve())

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.blocked:
            client_w.transport.abort()  # like a service that is down: the connection resets
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        if self.answers_to_lose:
            self.answers_to_lose -= 1
            await self._lose_answer(client_r, client_w, up_r, up_w)
            return
        self._writers.update((client_w, up_w))
        await asyncio.gather(self._pipe(client_r, up_w), self._pipe(up_r, client_w))
        self._writers.difference_update((client_w, up_w))

    async def _lose_answer(
        self,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        up_r: asyncio.StreamReader,
        up_w: asyncio.StreamWriter,
    ) -> None:
        """Forward the request; once the answer starts (the work is done), reset the client's
        connection instead of passing the answer on."""
        request = asyncio.ensure_future(self._pipe(client_r, up_w))
        await up_r.read(1)
        client_w.transport.abort()
        up_w.transport.abort()
        request.cancel()

    def _on_loop(self, fn: object) -> None:
        async def call() -> None:
            fn()  # type: ignore[operator]

        asyncio.run_coroutine_threadsafe(call(), self._loop).result(10)

    def block(self) -> None:
        """Refuse new connections and cut the open ones (returns once done)."""

        def cut() -> None:
            self.blocked = True
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._on_loop(cut)

    def lose_answers(self, count: int) -> None:
        """Let the next ``count`` connections reach the target but never hear its answer."""
        self._on_loop(lambda: setattr(self, "answers_to_lose", count))

    def unblock(self) -> None:
        self._on_loop(lambda: setattr(self, "blocked", False))

    def close(self) -> None:
        self.block()
        self._loop.call_soon_threadsafe(self._server.close)
        for task in asyncio.all_tasks(self._loop):
            self._loop.call_soon_threadsafe(task.cancel)
        self._thread.join(5)
