"""Canned ACLs as namespace visibility. A namespace's visibility says who may read what it
holds, which is what three of S3's canned ACLs say of a bucket: ``private``,
``authenticated-read`` (every signed-in user: Djinn's ``internal``) and ``public-read``.
Those are accepted on buckets and set the visibility; an object takes its bucket's, so on
an object a canned ACL is accepted when it says what is true already. Explicit grants and
the other canned ACLs cannot be expressed: NotImplemented, never a success that grants
something else.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from starlette.responses import Response

from ...core.models import Namespace, User, Visibility
from ...service import Stowage
from . import errors
from .requests import S3Request
from .responses import xml_response
from .xml import element, parent

CANNED = {
    "private": Visibility.PRIVATE,
    "authenticated-read": Visibility.INTERNAL,
    "public-read": Visibility.PUBLIC,
}
# The other canned ACLs S3 defines. The bucket-owner ones are true of every object: a
# bucket's owner may read and change what it holds.
BUCKET_OWNERS = ("bucket-owner-read", "bucket-owner-full-control")
UNSERVED = ("public-read-write", "aws-exec-read", "log-delivery-write")
GROUPS = "http://acs.amazonaws.com/groups/global/"
READERS = {Visibility.INTERNAL: "AuthenticatedUsers", Visibility.PUBLIC: "AllUsers"}
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def requested(request: S3Request) -> str | None:
    """The canned ACL the request asks for, if any."""
    if any(name.startswith("x-amz-grant-") for name in request.headers):
        raise errors.not_implemented("x-amz-grant-* headers (only canned ACLs are served)")
    return _known(request.headers.get("x-amz-acl"))


def _known(canned: str | None) -> str | None:
    if canned is not None and canned not in (*CANNED, *BUCKET_OWNERS, *UNSERVED):
        raise errors.invalid_argument("Invalid canned ACL", "x-amz-acl", canned)
    return canned


def bucket_visibility(request: S3Request) -> Visibility | None:
    """The visibility a bucket's canned ACL asks for; None when it asks for none."""
    canned = requested(request)
    if canned is None:
        return None
    if canned not in CANNED:
        raise errors.not_implemented(f"x-amz-acl: {canned} on a bucket")
    return CANNED[canned]


def check_object_acl(request: S3Request, bucket: Namespace) -> None:
    """Accept an object's canned ACL that is true already, refuse one that is not."""
    check_object_canned(requested(request), bucket)


def check_object_canned(canned: str | None, bucket: Namespace) -> None:
    """The same, of a canned ACL given otherwise (a POST form's ``acl`` field)."""
    canned = _known(canned)
    if canned is None or canned in BUCKET_OWNERS or CANNED.get(canned) is bucket.visibility:
        return
    raise errors.not_implemented(
        f"x-amz-acl: {canned} on an object in a {bucket.visibility.value} bucket "
        "(objects take their bucket's ACL)"
    )


async def user_of(stowage: Stowage, request: S3Request, user_id: int) -> User:
    """The user with this id as the caller may see them, to name as an ``<Owner>``."""
    return (await stowage.namespaces.users_by_ids({user_id}, request.caller))[user_id]


def owner(user: User) -> str:
    return parent("Owner", [element("ID", user.id), element("DisplayName", user.name)])


def _grant(grantee: str, permission: str) -> str:
    return parent("Grant", [grantee, element("Permission", permission)])


async def policy_response(
    stowage: Stowage, request: S3Request, owner_id: int, visibility: Visibility
) -> Response:
    """The AccessControlPolicy that grants what ``visibility`` does: full control to the
    owner and, unless private, reading to a group."""
    user = await user_of(stowage, request, owner_id)
    owner_grantee = (
        f'<Grantee {XSI} xsi:type="CanonicalUser">{element("ID", user.id)}'
        f"{element('DisplayName', user.name)}</Grantee>"
    )
    grants = [_grant(owner_grantee, "FULL_CONTROL")]
    if visibility in READERS:
        uri = escape(GROUPS + READERS[visibility])
        grants.append(_grant(f'<Grantee {XSI} xsi:type="Group"><URI>{uri}</URI></Grantee>', "READ"))
    return xml_response("AccessControlPolicy", [owner(user), parent("AccessControlList", grants)])
