"""Bucket configurations stowage does not keep (versioning, policies, CORS, lifecycle…).

Asked for one, S3 says what a bucket where none was ever set has: an empty document, or
a 404 with the code that says "none" for that kind. Tools that read a bucket's whole state
(Terraform, rclone, consoles) ask for all of them and stop at a 501, so their GETs answer
as S3 does; setting any of them stays NotImplemented, never a success that did nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from starlette.responses import Response

from ...service import Stowage
from . import errors
from .buckets import resolve
from .requests import S3Request
from .responses import xml_response
from .xml import element

Operation = Callable[[S3Request, Stowage], Awaitable[Response]]

# Sub-resource: (operation, the empty document's root and children).
EMPTY = {
    "versioning": ("GetBucketVersioning", "VersioningConfiguration", []),
    "logging": ("GetBucketLogging", "BucketLoggingStatus", []),
    "notification": ("GetBucketNotificationConfiguration", "NotificationConfiguration", []),
    "requestPayment": (
        "GetBucketRequestPayment",
        "RequestPaymentConfiguration",
        [element("Payer", "BucketOwner")],
    ),
    "accelerate": ("GetBucketAccelerateConfiguration", "AccelerateConfiguration", []),
}
# Sub-resource: (operation, the code and message of S3's 404 for "none set").
ABSENT = {
    "tagging": ("GetBucketTagging", "NoSuchTagSet", "The TagSet does not exist"),
    "cors": ("GetBucketCors", "NoSuchCORSConfiguration", "The CORS configuration does not exist"),
    "policy": ("GetBucketPolicy", "NoSuchBucketPolicy", "The bucket policy does not exist"),
    "policyStatus": (
        "GetBucketPolicyStatus",
        "NoSuchBucketPolicy",
        "The bucket policy does not exist",
    ),
    "lifecycle": (
        "GetBucketLifecycleConfiguration",
        "NoSuchLifecycleConfiguration",
        "The lifecycle configuration does not exist",
    ),
    "encryption": (
        "GetBucketEncryption",
        "ServerSideEncryptionConfigurationNotFoundError",
        "The server side encryption configuration was not found",
    ),
    "object-lock": (
        "GetObjectLockConfiguration",
        "ObjectLockConfigurationNotFoundError",
        "Object Lock configuration does not exist for this bucket",
    ),
    "publicAccessBlock": (
        "GetPublicAccessBlock",
        "NoSuchPublicAccessBlockConfiguration",
        "The public access block configuration was not found",
    ),
    "ownershipControls": (
        "GetBucketOwnershipControls",
        "OwnershipControlsNotFoundError",
        "The bucket ownership controls were not found",
    ),
    "website": (
        "GetBucketWebsite",
        "NoSuchWebsiteConfiguration",
        "The specified bucket does not have a website configuration",
    ),
    "replication": (
        "GetBucketReplication",
        "ReplicationConfigurationNotFoundError",
        "The replication configuration was not found",
    ),
}


async def _empty(root: str, children: list[str], request: S3Request, stowage: Stowage) -> Response:
    await resolve(request, stowage, "own")
    return xml_response(root, children)


async def _absent(code: str, message: str, request: S3Request, stowage: Stowage) -> Response:
    await resolve(request, stowage, "own")
    raise errors.S3Error(code, message, 404, {"BucketName": request.bucket})


def operation(query: dict[str, str]) -> tuple[str, Operation] | None:
    """The GET of a configuration the query names, if stowage answers it as unset."""
    for name, (op, root, children) in EMPTY.items():
        if name in query:
            return op, partial(_empty, root, children)
    for name, (op, code, message) in ABSENT.items():
        if name in query:
            return op, partial(_absent, code, message)
    return None
