"""Object tags: ``x-amz-tagging`` on a write, the ``?tagging`` sub-resource, and
``x-amz-tagging-count`` on reads, with S3's rules: at most 10 tags an object, keys of 1 to
128 characters, values of up to 256, no key twice."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from urllib.parse import parse_qsl

from starlette.responses import Response

from ...service import Stowage
from . import errors
from .batch import children, read_small
from .buckets import resolve, writable
from .requests import S3Request
from .responses import xml_response
from .xml import element, parent

MAX_TAGS = 10
MAX_KEY = 128
MAX_VALUE = 256
COUNT = "x-amz-tagging-count"


def checked(pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    """Tags as S3 allows them; None for none."""
    if len(pairs) > MAX_TAGS:
        raise errors.invalid_tag(f"Object tags cannot be greater than {MAX_TAGS}")
    tags: dict[str, str] = {}
    for key, value in pairs:
        if not key or len(key) > MAX_KEY:
            raise errors.invalid_tag(
                f"The TagKey you have provided is invalid (1 to {MAX_KEY} characters)"
            )
        if len(value) > MAX_VALUE:
            raise errors.invalid_tag(f"The TagValue you have provided is too long, max {MAX_VALUE}")
        if key in tags:
            raise errors.invalid_tag("Cannot provide multiple Tags with the same key")
        tags[key] = value
    return tags or None


def from_header(value: str | None) -> dict[str, str] | None:
    """``x-amz-tagging``: the tags URL-encoded as a query string (a key alone has an empty
    value)."""
    if value is None:
        return None
    return checked(parse_qsl(value, keep_blank_values=True))


def from_xml(data: bytes) -> dict[str, str] | None:
    """A ``<Tagging><TagSet><Tag><Key/><Value/></Tag>…`` document."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        raise errors.malformed_xml() from None
    sets = children(root, "TagSet")
    if root.tag.rsplit("}", 1)[-1] != "Tagging" or len(sets) != 1:
        raise errors.malformed_xml()
    pairs = []
    for tag in children(sets[0], "Tag"):
        key, value = children(tag, "Key"), children(tag, "Value")
        if len(key) != 1 or len(value) != 1:
            raise errors.malformed_xml()
        pairs.append((key[0].text or "", value[0].text or ""))
    return checked(pairs)


def document(tags: dict[str, str] | None) -> Response:
    listed = [
        parent("Tag", [element("Key", key), element("Value", value)])
        for key, value in sorted((tags or {}).items())
    ]
    return xml_response("Tagging", [parent("TagSet", listed)])


async def get(request: S3Request, stowage: Stowage) -> Response:
    bucket = await resolve(request, stowage, "read")
    obj = await stowage.objects.named(request.caller, bucket, request.key)
    return document(obj.tags)


async def put(request: S3Request, stowage: Stowage) -> Response:
    caller, bucket = await writable(request, stowage)
    obj = await stowage.objects.named(caller, bucket, request.key)
    await stowage.objects.tag(caller, obj, from_xml(await read_small(request)))
    return Response(status_code=200)


async def delete(request: S3Request, stowage: Stowage) -> Response:
    caller, bucket = await writable(request, stowage)
    obj = await stowage.objects.named(caller, bucket, request.key)
    await stowage.objects.tag(caller, obj, None)
    return Response(status_code=204)
