"""S3's multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts
and ListMultipartUploads, over the core's uploads in parts (``core/objects/multipart.py``)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from starlette.responses import Response

from ...core.access import Principal
from ...core.checksums import ALGORITHMS
from ...core.models import MultipartUpload
from ...core.objects import MAX_PARTS
from ...service import Stowage
from . import acl, errors, tagging
from .batch import children, read_small
from .buckets import writable
from .checksums import CHECKSUM_PREFIX, upload_checksum
from .headers import checksum_element, checksum_elements, stored
from .objects import DEFAULT_TYPE, copy_source, etag, user_metadata
from .requests import S3Request
from .responses import xml_response
from .sigv4 import header_fields
from .xml import element, parent, timestamp

MAX_LISTED = 1000
COPY_RANGE_HEADER = "x-amz-copy-source-range"
COPY_RANGE = re.compile(r"bytes=(\d{1,19})-(\d{1,19})")  # 19 digits: past any object size


async def _upload(request: S3Request, stowage: Stowage) -> tuple[Principal, MultipartUpload]:
    caller, bucket = await writable(request, stowage)
    upload = await stowage.objects.multipart(caller, bucket, request.key, request.query["uploadId"])
    return caller, upload


async def create(request: S3Request, stowage: Stowage) -> Response:
    caller, bucket = await writable(request, stowage)
    acl.check_object_acl(request, bucket)
    algorithm, composite = upload_checksum(header_fields(request.scope["headers"]))
    upload = await stowage.objects.start_multipart(
        caller,
        bucket,
        request.key,
        user_metadata(request),
        request.headers.get("content-type") or DEFAULT_TYPE,
        headers=stored(request.headers),
        checksum_algorithm=algorithm,
        composite=composite,
        tags=tagging.from_header(request.headers.get("x-amz-tagging")),
    )
    return xml_response(
        "InitiateMultipartUploadResult",
        [
            element("Bucket", request.bucket),
            element("Key", request.key),
            element("UploadId", upload.upload_id),
        ],
        headers={f"x-amz-checksum-{name.lower()}": v for name, v in _checksum_kind(upload)},
    )


def _checksum_kind(upload: MultipartUpload) -> list[tuple[str, str]]:
    """The upload's checksum ``Algorithm`` and ``Type``, which S3 states in headers
    (``x-amz-checksum-algorithm``) and in XML (``<ChecksumAlgorithm>``)."""
    if upload.checksum_algorithm is None:
        return []
    kind = "COMPOSITE" if upload.composite else "FULL_OBJECT"
    return [("Algorithm", upload.checksum_algorithm.upper()), ("Type", kind)]


async def upload_part(request: S3Request, stowage: Stowage) -> Response:
    number = request.number("partNumber", 0, 100_000, longest=9)
    caller, upload = await _upload(request, stowage)
    body = request.body(upload.checksum_algorithm, stored_with_digests=upload.parts_are_blobs)
    sent = request.checksum_algorithm
    if upload.checksum_algorithm not in (None, sent):
        raise errors.invalid_request(
            f"Checksum Type mismatch occurred, expected checksum Type: "
            f"{upload.checksum_algorithm}, actual checksum Type: {sent}"
        )
    part = await stowage.objects.put_part(
        caller,
        upload,
        number,
        body,
        request.declared_length(),
        request.checksum,
        claimed=request.claimed,
    )
    headers = {"ETag": f'"{part.md5}"'}
    if (checksum := request.checksum()) is not None:
        headers[CHECKSUM_PREFIX + checksum.algorithm] = checksum.value
    return Response(status_code=200, headers=headers)


async def upload_part_copy(request: S3Request, stowage: Stowage) -> Response:
    """UploadPartCopy: a part made of an object's bytes, or of the range
    ``x-amz-copy-source-range`` names, found and checked as CopyObject finds its source.
    The part is then a part like any other (its ETag the md5 of its bytes)."""
    number = request.number("partNumber", 0, 100_000, longest=9)
    caller, upload = await _upload(request, stowage)
    _, _, source = await copy_source(request, stowage, caller)
    start, length = _copy_range(request.headers.get(COPY_RANGE_HEADER), source.size or 0)
    body = await stowage.objects.read(source, start, length)
    part = await stowage.objects.put_part(caller, upload, number, body, length)
    return xml_response(
        "CopyPartResult",
        [element("LastModified", timestamp(part.created_ms)), element("ETag", f'"{part.md5}"')],
    )


def _copy_range(header: str | None, size: int) -> tuple[int, int]:
    """``bytes=first-last`` (one range, both ends given) as start and length; the whole
    source without the header."""
    if header is None:
        return 0, size
    found = COPY_RANGE.fullmatch(header.strip())
    if found is None or int(found[1]) > int(found[2]):
        raise errors.invalid_argument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where "
            "first and last are the zero-based offsets of the first and last bytes to copy",
            COPY_RANGE_HEADER,
            header,
        )
    first, last = int(found[1]), int(found[2])
    if last >= size:
        raise errors.invalid_range(size, status=400)
    return first, last - first + 1


@dataclass(frozen=True)
class Chosen:
    """The parts a CompleteMultipartUpload names: number and ETag, and the checksum it
    says each has, by algorithm (``<ChecksumCRC32>``…), when it says one."""

    parts: list[tuple[int, str]]
    checksums: dict[int, tuple[str, str]]


def _chosen_parts(data: bytes) -> Chosen:
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        raise errors.malformed_xml() from None
    chosen = Chosen([], {})
    for part in children(root, "Part"):
        number, tag = children(part, "PartNumber"), children(part, "ETag")
        if len(number) != 1 or len(tag) != 1 or not (number[0].text or "").isdigit():
            raise errors.malformed_xml()
        n = int(number[0].text or "0")
        chosen.parts.append((n, tag[0].text or ""))
        for algorithm in ALGORITHMS:
            given = children(part, "Checksum" + algorithm.upper())
            if given:
                chosen.checksums[n] = (algorithm, given[0].text or "")
    return chosen


async def _check_checksums(
    stowage: Stowage, caller: Principal, upload: MultipartUpload, chosen: Chosen
) -> None:
    """The checksums a completion names must be those its parts were sent with, as S3
    checks them; a part's ETag alone is checked by the core."""
    if not chosen.checksums:
        return
    sent_with = {
        p.part_number: p for p in await stowage.objects.parts(caller, upload, 0, MAX_PARTS)
    }
    for number, (algorithm, value) in chosen.checksums.items():
        if algorithm != upload.checksum_algorithm:
            raise errors.invalid_request(
                f"The upload was created using the {upload.checksum_algorithm or 'null'} "
                f"checksum algorithm; part {number} names {algorithm}."
            )
        part = sent_with.get(number)
        if part is not None and part.checksum != value:
            raise errors.invalid_part(
                f"The checksum of part {number} is not the {algorithm} it was uploaded with."
            )


async def complete(request: S3Request, stowage: Stowage) -> Response:
    caller, upload = await _upload(request, stowage)
    chosen = _chosen_parts(await read_small(request))
    await _check_checksums(stowage, caller, upload, chosen)
    obj = await stowage.objects.complete_multipart(caller, upload, chosen.parts)
    return xml_response(
        "CompleteMultipartUploadResult",
        [
            element("Location", f"/{request.bucket}/{request.key}"),
            element("Bucket", request.bucket),
            element("Key", request.key),
            element("ETag", etag(obj)),
            *checksum_elements(obj.checksum),
        ],
    )


async def abort(request: S3Request, stowage: Stowage) -> Response:
    caller, upload = await _upload(request, stowage)
    await stowage.objects.abort_multipart(caller, upload)
    return Response(status_code=204)


async def list_parts(request: S3Request, stowage: Stowage) -> Response:
    caller, upload = await _upload(request, stowage)
    after = request.number("part-number-marker", 0, 100_000, longest=9)
    most = request.number("max-parts", MAX_LISTED, MAX_LISTED, longest=9)
    found = await stowage.objects.parts(caller, upload, after, most + 1)
    shown, truncated = found[:most], len(found) > most
    listed = [
        parent(
            "Part",
            [
                element("PartNumber", p.part_number),
                element("LastModified", timestamp(p.created_ms)),
                element("ETag", f'"{p.md5}"'),
                element("Size", p.size),
                *(
                    [checksum_element(upload.checksum_algorithm, p.checksum)]
                    if upload.checksum_algorithm and p.checksum
                    else []
                ),
            ],
        )
        for p in shown
    ]
    return xml_response(
        "ListPartsResult",
        [
            element("Bucket", request.bucket),
            element("Key", request.key),
            element("UploadId", upload.upload_id),
            element("PartNumberMarker", after),
            element("NextPartNumberMarker", shown[-1].part_number if shown else after),
            element("MaxParts", most),
            element("IsTruncated", truncated),
            element("StorageClass", "STANDARD"),
            *[element(f"Checksum{name}", value) for name, value in _checksum_kind(upload)],
            *listed,
        ],
    )


async def list_uploads(request: S3Request, stowage: Stowage) -> Response:
    caller, bucket = await writable(request, stowage)
    query = request.query
    prefix, key_marker = query.get("prefix", ""), query.get("key-marker", "")
    id_marker = query.get("upload-id-marker", "")
    most = request.number("max-uploads", MAX_LISTED, MAX_LISTED, longest=9)
    found = await stowage.objects.uploads_in(
        caller, bucket, prefix, key_marker, id_marker, most + 1
    )
    shown, truncated = found[:most], len(found) > most
    listed = [
        parent(
            "Upload",
            [
                element("Key", u.name),
                element("UploadId", u.upload_id),
                element("Initiated", timestamp(u.created_ms)),
                element("StorageClass", "STANDARD"),
            ],
        )
        for u in shown
    ]
    following = (
        [
            element("NextKeyMarker", shown[-1].name),
            element("NextUploadIdMarker", shown[-1].upload_id),
        ]
        if truncated
        else []
    )
    return xml_response(
        "ListMultipartUploadsResult",
        [
            element("Bucket", request.bucket),
            element("KeyMarker", key_marker),
            element("UploadIdMarker", id_marker),
            *following,
            element("Prefix", prefix),
            element("MaxUploads", most),
            element("IsTruncated", truncated),
            *listed,
        ],
    )
