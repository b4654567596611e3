"""Object operations: keys are object names in the bucket's namespace, one live object per
key, so an object put here is the same object the Djinn and Runloop APIs show."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, quote, unquote

from starlette.requests import Request
from starlette.responses import Response

from ...core.access import Principal
from ...core.errors import FieldErrors, NotFound
from ...core.models import Namespace, StoredObject
from ...core.objects import KEYS, NEW_KEYS
from ...service import Stowage
from ..common.responses import blob_response, http_date_seconds
from . import errors
from .buckets import resolve, signed
from .requests import S3Request
from .responses import xml_response
from .xml import element, parent, timestamp

MAX_KEYS = 1000
# Past every name that starts with a common prefix: no key holds this character.
BEYOND = "\U0010ffff"
DEFAULT_TYPE = "binary/octet-stream"  # what S3 says of bytes put without a Content-Type
META = "x-amz-meta-"


def etag(obj: StoredObject) -> str:
    """S3's ETag: the md5, or for an object assembled from parts, the md5 of theirs."""
    return f'"{obj.etag or obj.md5}"'


async def put(request: S3Request, stowage: Stowage) -> Response:
    caller = signed(request)
    bucket = await resolve(request, stowage)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and if_none_match.strip() != "*":
        raise errors.not_implemented("If-None-Match other than *")
    if "if-match" in request.headers:
        raise errors.not_implemented("If-Match on PutObject")
    body = request.body()
    try:
        obj = await stowage.objects.put(
            caller,
            request.key,
            bucket,
            body,
            request.declared_length(),
            KEYS if if_none_match is None else NEW_KEYS,
            metadata=user_metadata(request),
            mime_type=request.headers.get("content-type") or DEFAULT_TYPE,
        )
    except FieldErrors as exc:
        if if_none_match is not None and any(p.code == "taken" for p in exc.problems):
            raise errors.precondition_failed("If-None-Match") from None
        raise
    return Response(status_code=200, headers={"ETag": etag(obj)})


def user_metadata(request: S3Request) -> dict[str, str] | None:
    """``x-amz-meta-*`` headers: the object's metadata, which the Runloop API shows too."""
    found = {
        name[len(META) :]: value for name, value in request.headers.items() if name.startswith(META)
    }
    return found or None


async def copy(request: S3Request, stowage: Stowage) -> Response:
    """CopyObject: the source's bytes under the target key, with the source's
    Content-Type and metadata (``x-amz-metadata-directive: COPY``, the default) or the
    request's own (``REPLACE``)."""
    caller = signed(request)
    bucket = await resolve(request, stowage)
    source_namespace, source_key, source = await copy_source(request, stowage, caller)
    directive = request.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise errors.invalid_argument(
            "Unknown metadata directive.", "x-amz-metadata-directive", directive
        )
    if directive == "COPY" and (source_namespace.id, source_key) == (bucket.id, request.key):
        raise errors.copy_onto_itself()
    if directive == "COPY":
        metadata, mime = source.metadata, source.mime_type
    else:
        metadata = user_metadata(request)
        mime = request.headers.get("content-type") or DEFAULT_TYPE
    size = source.size or 0
    body = await stowage.objects.read(source, 0, size) if size else _nothing()
    copied = await stowage.objects.put(
        caller, request.key, bucket, body, size, KEYS, metadata=metadata, mime_type=mime
    )
    result = [
        element("LastModified", timestamp(copied.create_time_ms)),
        element("ETag", etag(copied)),
    ]
    return xml_response("CopyObjectResult", result)


async def copy_source(
    request: S3Request, stowage: Stowage, caller: Principal
) -> tuple[Namespace, str, StoredObject]:
    """The bucket, key and object that ``x-amz-copy-source`` names (CopyObject and
    UploadPartCopy), once the caller may read it and its ``x-amz-copy-source-if-*``
    conditions hold."""
    source_bucket, source_key = _copy_source(request.headers["x-amz-copy-source"])
    source_namespace = await resolve(request, stowage, source_bucket)
    try:
        source = await stowage.objects.named(caller, source_namespace, source_key)
    except NotFound:
        raise errors.no_such_key(source_key) from None
    _check_copy_conditions(request, source)
    return source_namespace, source_key, source


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


def _copy_source(header: str) -> tuple[str, str]:
    """``x-amz-copy-source``: ``bucket/key``, percent-encoded, maybe with a leading slash;
    a version other than the only one (``null``) names nothing here."""
    path, _, query = header.partition("?")
    bucket, _, key = unquote(path).removeprefix("/").partition("/")
    version = dict(parse_qsl(query)).get("versionId")
    if not bucket or not key:
        raise errors.invalid_argument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            "x-amz-copy-source",
            header,
        )
    if version not in (None, "null"):
        raise errors.not_implemented("versionId")
    return bucket, key


def _check_copy_conditions(request: S3Request, source: StoredObject) -> None:
    """The ``x-amz-copy-source-if-*`` headers, as S3 applies them to the source."""
    headers = request.headers
    match = headers.get("x-amz-copy-source-if-match")
    none_match = headers.get("x-amz-copy-source-if-none-match")
    if match is not None and match.strip() not in (etag(source), source.md5, "*"):
        raise errors.precondition_failed("x-amz-copy-source-If-Match")
    if none_match is not None and none_match.strip() in (etag(source), source.md5, "*"):
        raise errors.precondition_failed("x-amz-copy-source-If-None-Match")
    modified_s = source.create_time_ms // 1000
    since = http_date_seconds(headers.get("x-amz-copy-source-if-unmodified-since"))
    if match is None and since is not None and modified_s > since:
        raise errors.precondition_failed("x-amz-copy-source-If-Unmodified-Since")
    since = http_date_seconds(headers.get("x-amz-copy-source-if-modified-since"))
    if none_match is None and since is not None and modified_s <= since:
        raise errors.precondition_failed("x-amz-copy-source-If-Modified-Since")


async def get(request: S3Request, stowage: Stowage) -> Response:
    """GET and HEAD, with Range and the conditional headers (``blob_response``), whose
    refusals S3 words as errors."""
    bucket = await resolve(request, stowage)
    obj = await stowage.objects.named(request.caller, bucket, request.key)
    response = await blob_response(
        Request(request.scope, request.receive),
        stowage.objects,
        obj,
        obj.mime_type or DEFAULT_TYPE,
    )
    if response.status_code == 412:
        raise errors.precondition_failed("If-Match")
    if response.status_code == 416:
        raise errors.invalid_range(obj.size or 0)
    del response.headers["content-disposition"]
    if "content-type" in response.headers:  # as stored: Starlette adds a charset to text/*
        response.headers["content-type"] = obj.mime_type or DEFAULT_TYPE
    for name, value in (obj.metadata or {}).items():
        response.headers[META + name] = value
    return response


async def delete(request: S3Request, stowage: Stowage) -> Response:
    """204 whether or not the key held an object, as S3 answers."""
    bucket = await resolve(request, stowage)
    await stowage.objects.delete_named(signed(request), bucket, request.key)
    return Response(status_code=204)


async def list_objects(request: S3Request, stowage: Stowage) -> Response:
    """ListObjects (V1) and ListObjectsV2 (``list-type=2``): keys in byte order, those
    sharing a ``delimiter`` after the ``prefix`` rolled up into CommonPrefixes."""
    query = request.query
    bucket = await resolve(request, stowage)
    v2 = query.get("list-type") == "2"
    prefix = query.get("prefix", "")
    delimiter = query.get("delimiter", "")
    max_keys = request.number("max-keys", MAX_KEYS, MAX_KEYS)
    encode = query.get("encoding-type") == "url"
    if encode is False and "encoding-type" in query:
        raise errors.invalid_argument(
            "Invalid Encoding Method specified in Request", "encoding-type", query["encoding-type"]
        )
    token = query.get("continuation-token")
    if v2:
        after = _decode_token(token) if token is not None else query.get("start-after") or None
    else:
        after = query.get("marker") or None

    contents: list[StoredObject] = []
    prefixes: list[str] = []
    cursor, truncated, last = after, False, None
    while max_keys and not truncated:
        room = max_keys - len(contents) - len(prefixes)
        batch = await stowage.objects.keys_in(request.caller, bucket, prefix, cursor, room + 1)
        if not batch:
            break
        for obj in batch:
            if len(contents) + len(prefixes) == max_keys:
                truncated = True
                break
            rolled = _common_prefix(obj.name, prefix, delimiter)
            if rolled is not None:
                prefixes.append(rolled)
                last = rolled
                cursor = rolled + BEYOND
                break
            contents.append(obj)
            last = cursor = obj.name
        else:
            if len(batch) < room + 1:
                break

    def key(text: str) -> str:
        return quote(text, safe="/") if encode else text

    children = [element("Name", request.bucket), element("Prefix", key(prefix))]
    if v2:
        if token is not None:
            children.append(element("ContinuationToken", token))
        if "start-after" in query:
            children.append(element("StartAfter", key(query["start-after"])))
        children.append(element("KeyCount", len(contents) + len(prefixes)))
        if truncated and last is not None:
            children.append(element("NextContinuationToken", _encode_token(last)))
    else:
        children.append(element("Marker", key(query.get("marker", ""))))
        if truncated and delimiter and last is not None:
            children.append(element("NextMarker", key(last)))
    children.append(element("MaxKeys", max_keys))
    if delimiter:
        children.append(element("Delimiter", key(delimiter)))
    if encode:
        children.append(element("EncodingType", "url"))
    children.append(element("IsTruncated", truncated))
    for obj in contents:
        fields = [
            element("Key", key(obj.name)),
            element("LastModified", timestamp(obj.create_time_ms)),
            element("ETag", etag(obj)),
            element("Size", obj.size or 0),
            element("StorageClass", "STANDARD"),
        ]
        if not v2:
            fields.append(parent("Owner", [element("ID", obj.owner_id)]))
        children.append(parent("Contents", fields))
    children += [parent("CommonPrefixes", [element("Prefix", key(p))]) for p in prefixes]
    return xml_response("ListBucketResult", children)


def _common_prefix(name: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    at = name.find(delimiter, len(prefix))
    return name[: at + len(delimiter)] if at >= 0 else None


def _encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise errors.invalid_argument(
            "The continuation token provided is incorrect", "continuation-token", token
        ) from None
