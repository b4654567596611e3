"""Object operations: keys are object names in the bucket's namespace, one live object per
key, so an object put here is the same object the Djinn and Runloop APIs show."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qsl, quote, unquote

from starlette.requests import Request
from starlette.responses import Response

from ...core.access import Principal
from ...core.checksums import ALGORITHMS, b64
from ...core.errors import FieldErrors, NotFound
from ...core.models import Checksum, Namespace, StoredObject
from ...core.objects import KEYS, NEW_KEYS
from ...service import Stowage
from ..common.responses import blob_response, http_date_seconds
from . import acl, errors, tagging
from .buckets import resolve, writable
from .checksums import named_algorithm
from .headers import checksum_elements, checksum_headers, overrides, send, stored
from .requests import S3Request
from .responses import xml_response
from .sigv4 import header_fields
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
    caller, bucket = await writable(request, stowage)
    acl.check_object_acl(request, bucket)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and if_none_match.strip() != "*":
        raise errors.not_implemented("If-None-Match other than *")
    if_match = request.headers.get("if-match")
    if if_match is not None and if_none_match is not None:
        raise errors.not_implemented("If-Match with If-None-Match on PutObject")
    body = request.body(stored_with_digests=True)
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
            if_match=if_match.strip().strip('"') if if_match is not None else None,
            headers=stored(request.headers),
            checksum=request.checksum,
            tags=tagging.from_header(request.headers.get("x-amz-tagging")),
            claimed=request.claimed,
        )
    except FieldErrors as exc:
        if if_none_match is not None and any(p.code == "taken" for p in exc.problems):
            raise errors.precondition_failed("If-None-Match") from None
        raise
    sent = {"ETag": etag(obj)}
    if obj.checksum is not None:
        sent.update(checksum_headers(obj.checksum))
    return Response(status_code=200, headers=sent)


def user_metadata(request: S3Request) -> dict[str, str] | None:
    """``x-amz-meta-*`` headers: the object's metadata, which the Runloop API shows too."""
    found = {
        name[len(META) :]: value for name, value in request.headers.items() if name.startswith(META)
    }
    return found or None


async def copy(request: S3Request, stowage: Stowage) -> Response:
    """CopyObject: the source's bytes under the target key, with the source's
    Content-Type, metadata and standard headers (``x-amz-metadata-directive: COPY``, the
    default) or the request's own (``REPLACE``), and a checksum (``_copied_checksum``)."""
    caller, bucket = await writable(request, stowage)
    acl.check_object_acl(request, bucket)
    source_namespace, source_key, source = await copy_source(request, stowage, caller)
    directive = request.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise errors.invalid_argument(
            "Unknown metadata directive.", "x-amz-metadata-directive", directive
        )
    if directive == "COPY" and (source_namespace.id, source_key) == (bucket.id, request.key):
        raise errors.copy_onto_itself()
    tags = source.tags
    tag_directive = request.headers.get("x-amz-tagging-directive", "COPY").upper()
    if tag_directive == "REPLACE":
        tags = tagging.from_header(request.headers.get("x-amz-tagging"))
    elif tag_directive != "COPY":
        raise errors.invalid_argument(
            "Unknown tagging directive.", "x-amz-tagging-directive", tag_directive
        )
    if directive == "COPY":
        metadata, mime, kept = source.metadata, source.mime_type, source.headers
    else:
        metadata = user_metadata(request)
        mime = request.headers.get("content-type") or DEFAULT_TYPE
        kept = stored(request.headers)
    size = source.size or 0
    body = await stowage.objects.read(source, 0, size) if size else _nothing()
    body, checksum = _copied_checksum(request, source, body)
    copied = await stowage.objects.put(
        caller,
        request.key,
        bucket,
        body,
        size,
        KEYS,
        metadata=metadata,
        mime_type=mime,
        headers=kept,
        checksum=checksum,
        tags=tags,
    )
    result = [
        element("LastModified", timestamp(copied.create_time_ms)),
        element("ETag", etag(copied)),
        *checksum_elements(copied.checksum),
    ]
    return xml_response("CopyObjectResult", result)


def _copied_checksum(
    request: S3Request, source: StoredObject, body: AsyncIterator[bytes]
) -> tuple[AsyncIterator[bytes], Callable[[], Checksum | None]]:
    """A copy has the same bytes, so the source's checksum of them holds for it too; one
    of another algorithm (``x-amz-checksum-algorithm``), or of the bytes where the
    source's was of its parts' checksums, is computed as they are copied."""
    had = source.checksum
    algorithm = named_algorithm(header_fields(request.scope["headers"]))
    if algorithm is None and had is not None and had.composite:
        algorithm = had.algorithm
    if algorithm is None or (
        had is not None and (had.algorithm, had.composite) == (algorithm, False)
    ):
        return body, lambda: had
    hasher = ALGORITHMS[algorithm]()

    async def hashed() -> AsyncIterator[bytes]:
        async for chunk in body:
            hasher.update(chunk)
            yield chunk

    return hashed(), lambda: Checksum(algorithm, b64(hasher.digest()))


async def copy_source(
    request: S3Request, stowage: Stowage, caller: Principal
) -> tuple[Namespace, str, StoredObject]:
    """The bucket, key and object that ``x-amz-copy-source`` names (CopyObject and
    UploadPartCopy), once the caller may read it and its ``x-amz-copy-source-if-*``
    conditions hold."""
    source_bucket, source_key = _copy_source(request.headers["x-amz-copy-source"])
    source_namespace = await resolve(request, stowage, "read", source_bucket)
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
    refusals S3 words as errors, and the headers S3 sends with an object (``headers``)."""
    chosen = overrides(request)
    bucket = await resolve(request, stowage, "read")
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
    send(response.headers, request, obj, chosen)
    if obj.tags:
        response.headers[tagging.COUNT] = str(len(obj.tags))
    return response


async def get_acl(request: S3Request, stowage: Stowage) -> Response:
    """An object's ACL is its bucket's (``acl.py``), with the object's owner."""
    bucket = await resolve(request, stowage, "read")
    obj = await stowage.objects.named(request.caller, bucket, request.key)
    return await acl.policy_response(stowage, request, obj.owner_id, bucket.visibility)


async def put_acl(request: S3Request, stowage: Stowage) -> Response:
    """Accepted when the canned ACL is what the object has already (``acl.py``)."""
    caller, bucket = await writable(request, stowage)
    await stowage.objects.named(caller, bucket, request.key)
    if "x-amz-acl" not in request.headers:
        raise errors.not_implemented("an ACL other than a canned one (x-amz-acl)")
    acl.check_object_acl(request, bucket)
    return Response(status_code=200)


async def delete(request: S3Request, stowage: Stowage) -> Response:
    """204 whether or not the key held an object, as S3 answers."""
    caller, bucket = await writable(request, stowage)
    await stowage.objects.delete_named(caller, bucket, request.key)
    return Response(status_code=204)


async def list_objects(request: S3Request, stowage: Stowage) -> Response:
    """ListObjects (V1) and ListObjectsV2 (``list-type=2``): keys in byte order, those
    sharing a ``delimiter`` after the ``prefix`` rolled up into CommonPrefixes."""
    query = request.query
    bucket = await resolve(request, stowage, "read")
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
    if after and after.startswith(prefix) and _common_prefix(after, prefix, delimiter) == after:
        after += BEYOND  # a page ended on this CommonPrefix: its keys went with it

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
    owner = ""  # V1 names each object's owner; V2 when asked to (fetch-owner)
    if contents and (not v2 or query.get("fetch-owner") == "true"):
        owner = acl.owner(await acl.user_of(stowage, request, bucket.owner_id))
    for obj in contents:
        fields = [
            element("Key", key(obj.name)),
            element("LastModified", timestamp(obj.create_time_ms)),
            element("ETag", etag(obj)),
            element("Size", obj.size or 0),
            owner,
            element("StorageClass", "STANDARD"),
        ]
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
