"""Bucket operations. A bucket is one of the caller's root namespaces, named as S3 names
buckets; creating one makes a namespace that the Djinn API shows too."""

from __future__ import annotations

from starlette.responses import Response

from ...core.access import Principal
from ...core.errors import NotFound
from ...core.models import Namespace
from ...service import Stowage
from . import errors
from .requests import S3Request
from .responses import xml_response
from .xml import element, parent, timestamp

REGION = "us-east-1"  # any region name is accepted; this is the one buckets report


def signed(request: S3Request) -> Principal:
    """The caller of an operation that anonymous requests may not make."""
    if request.caller is None:
        raise errors.access_denied()
    return request.caller


async def resolve(request: S3Request, stowage: Stowage, name: str | None = None) -> Namespace:
    """The bucket the request names, or ``name`` (NoSuchBucket when the caller has none
    so named)."""
    bucket = request.bucket if name is None else name
    try:
        return await stowage.namespaces.root(request.caller, bucket)
    except NotFound:
        raise errors.no_such_bucket(bucket) from None


async def list_buckets(request: S3Request, stowage: Stowage) -> Response:
    caller = signed(request)
    roots = await stowage.namespaces.roots(caller)
    owner = parent(
        "Owner", [element("ID", caller.user.id), element("DisplayName", caller.user.name)]
    )
    listed = [
        parent(
            "Bucket", [element("Name", n.name), element("CreationDate", timestamp(n.created_at_ms))]
        )
        for n in roots
    ]
    return xml_response("ListAllMyBucketsResult", [owner, parent("Buckets", listed)])


async def create(request: S3Request, stowage: Stowage) -> Response:
    caller = signed(request)
    acl = request.headers.get("x-amz-acl", "private")
    if acl != "private":
        raise errors.not_implemented(f"x-amz-acl: {acl}")
    await stowage.namespaces.create_root(caller, request.bucket)
    return Response(status_code=200, headers={"Location": f"/{request.bucket}"})


async def head(request: S3Request, stowage: Stowage) -> Response:
    await resolve(request, stowage)
    return Response(status_code=200, headers={"x-amz-bucket-region": REGION})


async def delete(request: S3Request, stowage: Stowage) -> Response:
    await stowage.namespaces.delete_root(signed(request), request.bucket)
    return Response(status_code=204)


async def location(request: S3Request, stowage: Stowage) -> Response:
    """Empty for us-east-1, as S3 answers for its default region."""
    await resolve(request, stowage)
    return xml_response("LocationConstraint", [])
