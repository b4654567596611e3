"""Bucket operations. A bucket is a root namespace, named as S3 names buckets; creating one
makes a namespace that the Djinn API shows too.

S3 has one bucket namespace for all users, Djinn one per owner. A bucket made through S3
holds its name alone (BucketAlreadyExists for anyone else), so a bucket name finds it for
every caller: the caller's own root of that name first, else the one other user's. Roots
that share a name (Djinn lets each user name theirs freely) are told apart as
``{bucket}_{owner}``: no bucket name holds ``_``, and clients accept it in path-style URLs.
"""

from __future__ import annotations

from typing import Literal

from starlette.responses import Response

from ...core.access import Principal
from ...core.errors import NotFound
from ...core.models import Namespace, Visibility
from ...service import Stowage
from . import acl, errors
from .requests import S3Request
from .responses import xml_response
from .xml import element, parent, timestamp

REGION = "us-east-1"  # any region name is accepted; this is the one buckets report
OWNER_SEPARATOR = "_"
OWNED_FORM = "name the owner's bucket as {bucket}_{owner}"

Need = Literal["read", "write", "own"]


def signed(request: S3Request) -> Principal:
    """The caller of an operation that anonymous requests may not make."""
    if request.caller is None:
        raise errors.access_denied()
    return request.caller


async def resolve(
    request: S3Request, stowage: Stowage, need: Need, name: str | None = None
) -> Namespace:
    """The bucket the request names, or ``name``: NoSuchBucket when there is none,
    AccessDenied when the caller may not do what ``need`` says there."""
    bucket = request.bucket if name is None else name
    root, _, owner = bucket.partition(OWNER_SEPARATOR)
    try:
        namespace = await stowage.namespaces.root(request.caller, root, owner or None)
        reach = await stowage.namespaces.reach(request.caller, namespace)
    except NotFound:
        raise errors.no_such_bucket(bucket) from None
    if not getattr(reach, need):
        raise errors.access_denied()
    return namespace


async def writable(
    request: S3Request, stowage: Stowage, need: Need = "write"
) -> tuple[Principal, Namespace]:
    """The caller and the bucket of an operation that changes what the bucket holds (or,
    ``own``, the bucket itself): NoSuchBucket before AccessDenied, as S3 answers, and
    the anonymous refused either way."""
    namespace = await resolve(request, stowage, need)
    return signed(request), namespace


async def list_buckets(request: S3Request, stowage: Stowage) -> Response:
    """The caller's own buckets, as S3 lists only those its caller owns."""
    caller = signed(request)
    roots = await stowage.namespaces.roots(caller)
    listed = [
        parent(
            "Bucket", [element("Name", n.name), element("CreationDate", timestamp(n.created_at_ms))]
        )
        for n in roots
    ]
    return xml_response(
        "ListAllMyBucketsResult", [acl.owner(caller.user), parent("Buckets", listed)]
    )


async def create(request: S3Request, stowage: Stowage) -> Response:
    caller = signed(request)
    visibility = acl.bucket_visibility(request) or Visibility.PRIVATE
    await stowage.namespaces.create_root(caller, request.bucket, visibility)
    return Response(status_code=200, headers={"Location": f"/{request.bucket}"})


async def head(request: S3Request, stowage: Stowage) -> Response:
    await resolve(request, stowage, "read")
    return Response(status_code=200, headers={"x-amz-bucket-region": REGION})


async def delete(request: S3Request, stowage: Stowage) -> Response:
    caller, namespace = await writable(request, stowage, "own")
    await stowage.namespaces.delete_root(caller, namespace)
    return Response(status_code=204)


async def location(request: S3Request, stowage: Stowage) -> Response:
    """Empty for us-east-1, as S3 answers for its default region."""
    await resolve(request, stowage, "read")
    return xml_response("LocationConstraint", [])


async def get_acl(request: S3Request, stowage: Stowage) -> Response:
    """The bucket's visibility as the canned ACL that grants the same."""
    namespace = await resolve(request, stowage, "read")
    return await acl.policy_response(stowage, request, namespace.owner_id, namespace.visibility)


async def put_acl(request: S3Request, stowage: Stowage) -> Response:
    """A canned ACL that a visibility can grant becomes the bucket's visibility."""
    caller, namespace = await writable(request, stowage, "own")
    visibility = acl.bucket_visibility(request)
    if visibility is None:
        raise errors.not_implemented("an ACL other than a canned one (x-amz-acl)")
    await stowage.namespaces.set_visibility(caller, namespace, visibility)
    return Response(status_code=200)
