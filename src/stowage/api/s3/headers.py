"""The headers S3 keeps with an object and sends back with its bytes: the standard ones a
writer sets (Cache-Control, Content-Disposition…), the ``response-*`` overrides of a
GetObject, and the object's checksum when a reader asks for it.

The core keeps these as data (``StoredObject.headers`` and ``.checksum``) without knowing
what they mean; this module is where S3's rules about them live.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import MutableHeaders

from ...core.models import Checksum, StoredObject
from . import errors
from .checksums import CHECKSUM_PREFIX
from .requests import S3Request
from .xml import element

# Sent on a write and sent back, as given, on every read of the object.
STORED = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
# GetObject's query parameters that set a response header, whatever the object keeps.
OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}
# The framing of a signed streaming body, named in Content-Encoding beside the encoding
# of the object itself: S3 keeps the rest, and no Content-Encoding when nothing is left.
TRANSFER_ENCODING = "aws-chunked"


def stored(given: Mapping[str, str]) -> dict[str, str] | None:
    """The standard headers a write gives the object: its request's headers, or the
    fields of a POST form (lowercased names)."""
    found = {name: given[name] for name in STORED if given.get(name)}
    encoding = found.pop("content-encoding", "")
    codings = [c.strip() for c in encoding.split(",")]
    kept = [c for c in codings if c and c.lower() != TRANSFER_ENCODING]
    if kept:
        found["content-encoding"] = ", ".join(kept)
    return found or None


def overrides(request: S3Request) -> dict[str, str]:
    """The headers a GetObject's ``response-*`` parameters set. S3 grants them only to
    a signed request: an anonymous one is ``InvalidRequest``."""
    found = {header: request.query[q] for q, header in OVERRIDES.items() if q in request.query}
    if found and request.caller is None:
        raise errors.invalid_request(
            "Request specific response headers cannot be used for anonymous GET requests."
        )
    return found


def checksum_type(checksum: Checksum) -> str:
    return "COMPOSITE" if checksum.composite else "FULL_OBJECT"


def checksum_headers(checksum: Checksum) -> dict[str, str]:
    """``x-amz-checksum-<algorithm>`` and the ``x-amz-checksum-type`` S3 sends with it."""
    return {
        CHECKSUM_PREFIX + checksum.algorithm: checksum.value,
        "x-amz-checksum-type": checksum_type(checksum),
    }


def checksum_elements(checksum: Checksum | None) -> list[str]:
    """The checksum as the XML of CopyObject, UploadPart listings and completion show it:
    ``<ChecksumCRC32>`` (or another algorithm's) and ``<ChecksumType>``."""
    if checksum is None:
        return []
    return [
        checksum_element(checksum.algorithm, checksum.value),
        element("ChecksumType", checksum_type(checksum)),
    ]


def checksum_element(algorithm: str, value: str) -> str:
    return element("Checksum" + algorithm.upper(), value)


def send(
    headers: MutableHeaders, request: S3Request, obj: StoredObject, chosen: Mapping[str, str]
) -> None:
    """Set on a GetObject's or HeadObject's response what the object keeps, then the
    ``chosen`` overrides; the checksum for ``x-amz-checksum-mode: ENABLED``, unless only
    a range of the bytes is sent (it would not be theirs)."""
    for name, value in {**(obj.headers or {}), **chosen}.items():
        headers[name] = value
    asked = request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
    if asked and obj.checksum is not None and "content-range" not in headers:
        headers.update(checksum_headers(obj.checksum))
