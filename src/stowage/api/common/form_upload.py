"""Form uploads (``multipart/form-data``), streamed: the ``file`` part goes straight to the
blob store. Djinn's multipart uploads and S3's POST Object both come this way.

Starlette's ``request.form()`` would spool the whole body to a temporary file first, with
no size check and no body timeout. Here the body (``deps.request_body``: idle timeout and
minimum rate) feeds python-multipart's push parser, the small fields before the ``file``
part are kept, and the ``file`` part's bytes flow on as a stream, under the upload limit of
the blob store like a raw body. Everything but the file's own bytes (fields, part headers,
boundaries) is capped at ``FORM_OVERHEAD`` bytes, which also lets a ``Content-Length``
prove a file too large before any of it is read.

Fields are read in order: those a route needs must come before the ``file`` part, as
browsers, ``curl -F`` and httpx send them (and as S3 requires); fields after it are not read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ...core.errors import Invalid

FORM_OVERHEAD = 1024 * 1024  # like the cap on JSON and form bodies of other routes
FILE_FIELD = "file"


@dataclass
class _Events:
    """What the parser reported during one ``write``: ("part", name), ("data", bytes)."""

    found: list[tuple[str, bytes]] = field(default_factory=list)
    disposition: bytes = b""
    header: bytes = b""
    value: bytes = b""

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._add("header", data[start:end]),
            "on_header_value": lambda data, start, end: self._add("value", data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": lambda data, start, end: self.found.append(
                ("data", bytes(data[start:end]))
            ),
        }

    def _add(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)

    def _begin(self) -> None:
        self.disposition = b""

    def _header_end(self) -> None:
        if self.header.lower() == b"content-disposition":
            self.disposition = self.value
        self.header = self.value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        self.found.append(("part", options.get(b"name", b"")))
        if b"filename" in options:
            self.found.append(("filename", options[b"filename"]))


async def _parsed(boundary: bytes, body: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, bytes]]:
    """The parser's events as the body arrives; Invalid for a malformed form, or one with
    more than ``FORM_OVERHEAD`` bytes besides those of its first ``file`` part."""
    events = _Events()
    try:
        parser = MultipartParser(boundary, events.callbacks())  # type: ignore[arg-type]
        overhead, part, files = 0, b"", 0
        async for chunk in body:
            parser.write(chunk)
            overhead += len(chunk)
            for kind, value in events.found:
                if kind == "part":
                    part, files = value, files + (value == FILE_FIELD.encode())
                elif kind == "data" and part == FILE_FIELD.encode() and files == 1:
                    overhead -= len(value)
                yield kind, value
            events.found.clear()
            if overhead > FORM_OVERHEAD:
                raise Invalid(
                    f"the form holds more than {FORM_OVERHEAD} bytes besides its file part"
                )
        parser.finalize()
    except FormParserError:
        raise Invalid("the multipart body is malformed") from None


def _text(raw: bytes | bytearray, what: str) -> str:
    """A field as text: UTF-8 or a 400, never a U+FFFD standing in for what was sent."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(f"the form field {what!r} is not valid UTF-8") from None


class FormUpload:
    """A multipart upload: the fields before the file, then the file as a stream."""

    def __init__(self, content_type: str, body: AsyncIterator[bytes]) -> None:
        _, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if not boundary:
            raise Invalid("the multipart body has no boundary")
        self._events = _parsed(boundary, body)
        self.fields: dict[str, str] = {}
        self.has_file = False
        self.file_name: str | None = None  # as the client named the file, if it did
        self._pending: tuple[str, bytes] | None = None  # an event read ahead of ``file``

    async def read_fields(self) -> None:
        """Read up to the ``file`` part (or the end), keeping the text fields."""
        current: str | None = None
        value = bytearray()
        async for kind, data in self._events:
            if kind == "part":
                if current is not None:
                    self.fields[current] = _text(value, current)
                current, value = _text(data, "a part's name"), bytearray()
                if current == FILE_FIELD:
                    self.has_file = True
                    await self._file_name()
                    return
            elif kind == "data":
                value += data
        if current is not None:
            self.fields[current] = _text(value, current)

    async def _file_name(self) -> None:
        """The file part's name, which the parser reports right after the part begins."""
        self._pending = await anext(self._events, None)
        if self._pending is not None and self._pending[0] == "filename":
            self.file_name = _text(self._pending[1], "the file's name")
            self._pending = None

    async def file(self) -> AsyncIterator[bytes]:
        """The ``file`` part's bytes; the rest of the body is read and left unused."""
        in_file = self.has_file
        if self._pending is not None:
            kind, data = self._pending
            self._pending = None
            if kind == "data":
                yield data
            else:
                in_file = False
        async for kind, data in self._events:
            if kind == "part":
                in_file = False
            elif kind == "data" and in_file:
                yield data
