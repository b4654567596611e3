"""Operations whose request body is a small XML document: DeleteObjects. The body is read
whole, under a cap, through the same signature and digest checks as an upload's."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from starlette.responses import Response

from ...core.errors import StowageError
from ...service import Stowage
from . import errors
from .buckets import writable
from .errors_map import s3_error
from .requests import S3Request
from .responses import xml_response
from .xml import element, parent

MAX_KEYS = 1000
MAX_BODY = 2 * 1024 * 1024  # a thousand keys of 1 KiB each, escaped, and the markup


async def read_small(request: S3Request) -> bytes:
    body = request.body()
    data = bytearray()
    async for chunk in body:
        data += chunk
        if len(data) > MAX_BODY:
            raise errors.malformed_xml()
    return bytes(data)


def children(element_: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    """Children called ``name``, with or without S3's XML namespace."""
    return [child for child in element_ if child.tag.rsplit("}", 1)[-1] == name]


def parse_delete(data: bytes) -> tuple[list[str], bool]:
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        raise errors.malformed_xml() from None
    if root.tag.rsplit("}", 1)[-1] != "Delete":
        raise errors.malformed_xml()
    keys = []
    for item in children(root, "Object"):
        key = children(item, "Key")
        if len(key) != 1 or not key[0].text:
            raise errors.malformed_xml()
        keys.append(key[0].text)
    if not keys or len(keys) > MAX_KEYS:
        raise errors.malformed_xml()
    quiet = children(root, "Quiet")
    return keys, bool(quiet) and (quiet[0].text or "").strip().lower() == "true"


async def delete_objects(request: S3Request, stowage: Stowage) -> Response:
    """Each key as DeleteObject would: deleted (or already absent), or an error of its
    own; one key's failure does not stop the others."""
    caller, bucket = await writable(request, stowage)
    headers = request.headers
    if "content-md5" not in headers and not any(h.startswith("x-amz-checksum-") for h in headers):
        raise errors.missing_content_md5()
    keys, quiet = parse_delete(await read_small(request))
    results = []
    for key in keys:
        try:
            await stowage.objects.delete_named(caller, bucket, key)
        except StowageError as exc:
            failed = s3_error(exc, request)
            results.append(
                parent(
                    "Error",
                    [
                        element("Key", key),
                        element("Code", failed.code),
                        element("Message", failed.message),
                    ],
                )
            )
            continue
        if not quiet:
            results.append(parent("Deleted", [element("Key", key)]))
    return xml_response("DeleteResult", results)
