"""Content sniffing against real sample bytes of each family (Go DetectContentType parity)."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import wave
import zipfile
import zlib

import pytest

from stowage.core.sniff import detect_content_type


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "hello")
    return buf.getvalue()


def tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("a.txt")
        info.size = 5
        t.addfile(info, io.BytesIO(b"hello"))
    return buf.getvalue()


def wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 10)
    return buf.getvalue()


def mp4() -> bytes:
    return struct.pack(">I", 24) + b"ftypisom\x00\x00\x02\x00isommp41" + b"\x00" * 16


SAMPLES = [
    (b"<!DOCTYPE html><html><body>hi</body></html>", "text/html; charset=utf-8"),
    (b"  \n<HtMl lang=en>", "text/html; charset=utf-8"),
    (b"<p>para</p>", "text/html; charset=utf-8"),
    (b"<!-- comment -->", "text/html; charset=utf-8"),
    (b"<pre>no</pre>", "text/plain; charset=utf-8"),  # <P must be followed by space or >
    (b'\n<?xml version="1.0"?><a/>', "text/xml; charset=utf-8"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
    (b"%!PS-Adobe-3.0\n", "application/postscript"),
    (b"\xfe\xff\x00h\x00i", "text/plain; charset=utf-16be"),
    (b"\xff\xfeh\x00i\x00", "text/plain; charset=utf-16le"),
    (b"\xef\xbb\xbfhello", "text/plain; charset=utf-8"),
    (b"\x00\x00\x01\x00\x01\x00", "image/x-icon"),
    (b"BM\x36\x00\x00\x00", "image/bmp"),
    (b"GIF89a\x01\x00\x01\x00", "image/gif"),
    (b"GIF87a\x01\x00\x01\x00", "image/gif"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    (png(), "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
    (b"FORM\x00\x00\x00\x20AIFFCOMM", "audio/aiff"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
    (b"OggS\x00\x02\x00\x00", "application/ogg"),
    (b"MThd\x00\x00\x00\x06\x00\x01", "audio/midi"),
    (b"RIFF\x24\x00\x00\x00AVI LIST", "video/avi"),
    (wav(), "audio/wave"),
    (mp4(), "video/mp4"),
    (b"\x1a\x45\xdf\xa3\x01\x00", "video/webm"),
    (b"\x00" * 34 + b"LP" + b"\x00" * 4, "application/vnd.ms-fontobject"),
    (b"\x00\x01\x00\x00\x00\x0c", "font/ttf"),
    (b"OTTO\x00\x0c", "font/otf"),
    (b"ttcf\x00\x01", "font/collection"),
    (b"wOFF\x00\x01", "font/woff"),
    (b"wOF2\x00\x01", "font/woff2"),
    (gzip.compress(b"hello"), "application/x-gzip"),
    (zip_bytes(), "application/zip"),
    (b"Rar!\x1a\x07\x00\xcf\x90", "application/x-rar-compressed"),
    (b"Rar!\x1a\x07\x01\x00\x33", "application/x-rar-compressed"),
    (b"\x00asm\x01\x00\x00\x00", "application/wasm"),
    (b"plain words\nand lines\r\n", "text/plain; charset=utf-8"),
    ("ünïcödé".encode(), "text/plain; charset=utf-8"),
    (tar_bytes(), "application/octet-stream"),  # tar has no signature in the table
    (b"\x00\x01\x02binary", "application/octet-stream"),
    (b"text with a \x1c separator", "application/octet-stream"),
    (b"text with a \x1b escape", "text/plain; charset=utf-8"),  # ESC is allowed in text
    (b"", "text/plain; charset=utf-8"),  # Go: empty input is text
]


@pytest.mark.parametrize(
    ("data", "expected"), SAMPLES, ids=[s[1] + str(i) for i, s in enumerate(SAMPLES)]
)
def test_detect_content_type(data: bytes, expected: str) -> None:
    assert detect_content_type(data) == expected


def test_only_the_first_512_bytes_count() -> None:
    assert detect_content_type(b"a" * 512 + b"\x00\x01") == "text/plain; charset=utf-8"
    assert detect_content_type(b"a" * 511 + b"\x00") == "application/octet-stream"
