"""Content type from the first bytes of a file: a port of Go's ``net/http.DetectContentType``.

Go's table implements the WHATWG MIME Sniffing standard, and Djinn's ``type`` field is
exactly its output, so clients that download with ``Accept: <type>`` need the same strings.
One deliberate difference: Djinn padded the header with NUL bytes to 512, which made every
text file shorter than 512 bytes ``application/octet-stream``; stowage sniffs the bytes that
are there.
"""

from __future__ import annotations

from collections.abc import Callable

SNIFF_LEN = 512
OCTET_STREAM = "application/octet-stream"
_WS = b"\t\n\x0c\r "
_TAG_TERMINATORS = b" >"

Matcher = Callable[[bytes, int], str | None]


def _exact(sig: bytes, ct: str) -> Matcher:
    return lambda data, _ws: ct if data.startswith(sig) else None


def _masked(mask: bytes, pat: bytes, ct: str, skip_ws: bool = False) -> Matcher:
    assert len(mask) == len(pat)

    def match(data: bytes, first_non_ws: int) -> str | None:
        if skip_ws:
            data = data[first_non_ws:]
        if len(data) < len(pat):
            return None
        if all(data[i] & mask[i] == pat[i] for i in range(len(pat))):
            return ct
        return None

    return match


def _html(sig: bytes) -> Matcher:
    def match(data: bytes, first_non_ws: int) -> str | None:
        data = data[first_non_ws:]
        if len(data) < len(sig) + 1:
            return None
        for i, b in enumerate(sig):
            db = data[i]
            if 0x41 <= b <= 0x5A:  # letters in the signature match either case
                db &= 0xDF
            if b != db:
                return None
        if data[len(sig)] not in _TAG_TERMINATORS:
            return None
        return "text/html; charset=utf-8"

    return match


def _mp4(data: bytes, _ws: int) -> str | None:
    if len(data) < 12:
        return None
    box_size = int.from_bytes(data[:4], "big")
    if len(data) < box_size or box_size % 4 != 0:
        return None
    if data[4:8] != b"ftyp":
        return None
    for start in range(8, box_size, 4):
        if start == 12:
            continue  # the major brand's version number
        if data[start : start + 3] == b"mp4":
            return "video/mp4"
    return None


def _text(data: bytes, first_non_ws: int) -> str | None:
    for b in data[first_non_ws:]:
        if b <= 0x08 or b == 0x0B or 0x0E <= b <= 0x1A or 0x1C <= b <= 0x1F:
            return None
    return "text/plain; charset=utf-8"


_HTML_TAGS = (
    b"<!DOCTYPE HTML",
    b"<HTML",
    b"<HEAD",
    b"<SCRIPT",
    b"<IFRAME",
    b"<H1",
    b"<DIV",
    b"<FONT",
    b"<TABLE",
    b"<A",
    b"<STYLE",
    b"<TITLE",
    b"<B",
    b"<BODY",
    b"<BR",
    b"<P",
    b"<!--",
)

# Order matters: the first match wins, and text is the fallback before octet-stream.
_SIGNATURES: tuple[Matcher, ...] = (
    *(_html(tag) for tag in _HTML_TAGS),
    _masked(b"\xff" * 5, b"<?xml", "text/xml; charset=utf-8", skip_ws=True),
    _exact(b"%PDF-", "application/pdf"),
    _exact(b"%!PS-Adobe-", "application/postscript"),
    _masked(b"\xff\xff\x00\x00", b"\xfe\xff\x00\x00", "text/plain; charset=utf-16be"),
    _masked(b"\xff\xff\x00\x00", b"\xff\xfe\x00\x00", "text/plain; charset=utf-16le"),
    _masked(b"\xff\xff\xff\x00", b"\xef\xbb\xbf\x00", "text/plain; charset=utf-8"),
    _exact(b"\x00\x00\x01\x00", "image/x-icon"),
    _exact(b"\x00\x00\x02\x00", "image/x-icon"),
    _exact(b"BM", "image/bmp"),
    _exact(b"GIF87a", "image/gif"),
    _exact(b"GIF89a", "image/gif"),
    _masked(
        b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff",
        b"RIFF\x00\x00\x00\x00WEBPVP",
        "image/webp",
    ),
    _exact(b"\x89PNG\x0d\x0a\x1a\x0a", "image/png"),
    _exact(b"\xff\xd8\xff", "image/jpeg"),
    _masked(
        b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff",
        b"FORM\x00\x00\x00\x00AIFF",
        "audio/aiff",
    ),
    _masked(b"\xff\xff\xff", b"ID3", "audio/mpeg"),
    _masked(b"\xff\xff\xff\xff\xff", b"OggS\x00", "application/ogg"),
    _masked(b"\xff" * 8, b"MThd\x00\x00\x00\x06", "audio/midi"),
    _masked(
        b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff",
        b"RIFF\x00\x00\x00\x00AVI ",
        "video/avi",
    ),
    _masked(
        b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff",
        b"RIFF\x00\x00\x00\x00WAVE",
        "audio/wave",
    ),
    _mp4,
    _exact(b"\x1a\x45\xdf\xa3", "video/webm"),
    _masked(b"\x00" * 34 + b"\xff\xff", b"\x00" * 34 + b"LP", "application/vnd.ms-fontobject"),
    _exact(b"\x00\x01\x00\x00", "font/ttf"),
    _exact(b"OTTO", "font/otf"),
    _exact(b"ttcf", "font/collection"),
    _exact(b"wOFF", "font/woff"),
    _exact(b"wOF2", "font/woff2"),
    _exact(b"\x1f\x8b\x08", "application/x-gzip"),
    _exact(b"PK\x03\x04", "application/zip"),
    _exact(b"Rar!\x1a\x07\x00", "application/x-rar-compressed"),
    _exact(b"Rar!\x1a\x07\x01\x00", "application/x-rar-compressed"),
    _exact(b"\x00\x61\x73\x6d", "application/wasm"),
    _text,
)


def detect_content_type(head: bytes) -> str:
    """The MIME type of content starting with ``head`` (only the first 512 bytes count)."""
    data = head[:SNIFF_LEN]
    first_non_ws = 0
    while first_non_ws < len(data) and data[first_non_ws] in _WS:
        first_non_ws += 1
    for signature in _SIGNATURES:
        found = signature(data, first_non_ws)
        if found:
            return found
    return OCTET_STREAM
