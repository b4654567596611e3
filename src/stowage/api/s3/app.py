"""The S3 API as one ASGI app, on a listener of its own (``listener.py``).

S3 routes by method, by whether the path names a bucket or a key, and by the query's
sub-resource (``?location``, ``?list-type=2``, ``?uploads``…), and it answers in XML with
its own error codes: a small dispatcher here fits that better than FastAPI's routing, and
costs less. Every request is authenticated first (SigV4, ``sigv4.verify``), every domain
error of the core becomes the S3 error a client expects (``errors_map.py``), and anything
else is logged and answered ``InternalError``, never a stack trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.datastructures import State
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ... import logs
from ...core.access import Principal
from ...core.errors import StowageError
from ...core.naming import MAX_NAME_BYTES
from ...service import Stowage
from ..common.admission import ClientCap, believe_proxy, trusted_proxies
from ..common.middleware import DRAIN_BYTES, DRAIN_SECONDS, declared_body
from . import (
    batch,
    buckets,
    errors,
    multipart,
    objects,
    post,
    sigv2,
    sigv4,
    tagging,
    unset,
)
from .errors import S3Error
from .errors_map import s3_error
from .requests import S3Request
from .responses import error_response
from .sigv4 import Verified

log = logging.getLogger(__name__)

Operation = Callable[[S3Request, Stowage], Awaitable[Response]]
# Sub-resources S3 has and stowage does not serve: answered NotImplemented.
UNSERVED = (
    "policy",
    "policyStatus",
    "versioning",
    "versions",
    "lifecycle",
    "cors",
    "website",
    "tagging",
    "replication",
    "logging",
    "notification",
    "encryption",
    "object-lock",
    "legal-hold",
    "retention",
    "requestPayment",
    "accelerate",
    "analytics",
    "inventory",
    "metrics",
    "ownershipControls",
    "publicAccessBlock",
    "intelligent-tiering",
    "torrent",
    "restore",
    "select",
    "attributes",
)


def _by_method(method: str, table: dict[str, tuple[str, Operation]]) -> tuple[str, Operation]:
    found = table.get(method)
    if found is None:
        raise errors.method_not_allowed(method)
    return found


def operation(request: S3Request) -> tuple[str, Operation]:
    """The operation a request asks for, by S3's rules, and its name for logs."""
    method, query = request.method, request.query
    if "\x00" in request.bucket or "\x00" in request.key:
        raise errors.invalid_request("bucket names and keys cannot contain NUL bytes")
    if len(request.key.encode()) > MAX_NAME_BYTES:
        raise errors.key_too_long(len(request.key.encode()))
    if "acl" in query and request.bucket and method in ("GET", "PUT"):
        on_key = bool(request.key)
        return {
            ("GET", False): ("GetBucketAcl", buckets.get_acl),
            ("PUT", False): ("PutBucketAcl", buckets.put_acl),
            ("GET", True): ("GetObjectAcl", objects.get_acl),
            ("PUT", True): ("PutObjectAcl", objects.put_acl),
        }[method, on_key]
    if "tagging" in query and request.key:
        return _by_method(
            method,
            {
                "GET": ("GetObjectTagging", tagging.get),
                "PUT": ("PutObjectTagging", tagging.put),
                "DELETE": ("DeleteObjectTagging", tagging.delete),
            },
        )
    if request.bucket and not request.key and method == "GET":
        configuration = unset.operation(query)
        if configuration is not None:
            return configuration
    unserved = next((q for q in UNSERVED if q in query), None)
    if unserved is not None:
        raise errors.not_implemented(f"?{unserved}")
    if not request.bucket:
        if method == "GET":
            return "ListBuckets", buckets.list_buckets
        raise errors.method_not_allowed(method)
    if not request.key:
        if method == "GET" and "location" in query:
            return "GetBucketLocation", buckets.location
        if method == "POST" and "delete" in query:
            return "DeleteObjects", batch.delete_objects
        if method == "POST":
            return "PostObject", post.post_object
        if method == "GET" and "uploads" in query:
            return "ListMultipartUploads", multipart.list_uploads
        return _by_method(
            method,
            {
                "PUT": ("CreateBucket", buckets.create),
                "HEAD": ("HeadBucket", buckets.head),
                "DELETE": ("DeleteBucket", buckets.delete),
                "GET": ("ListObjects", objects.list_objects),
            },
        )
    else:
        if "uploadId" in query:
            if method == "PUT" and "x-amz-copy-source" in request.headers:
                return "UploadPartCopy", multipart.upload_part_copy
            return _by_method(
                method,
                {
                    "PUT": ("UploadPart", multipart.upload_part),
                    "POST": ("CompleteMultipartUpload", multipart.complete),
                    "DELETE": ("AbortMultipartUpload", multipart.abort),
                    "GET": ("ListParts", multipart.list_parts),
                },
            )
        if method == "POST" and "uploads" in query:
            return "CreateMultipartUpload", multipart.create
        if method == "PUT" and "x-amz-copy-source" in request.headers:
            return "CopyObject", objects.copy
        return _by_method(
            method,
            {
                "PUT": ("PutObject", objects.put),
                "GET": ("GetObject", objects.get),
                "HEAD": ("HeadObject", objects.get),
                "DELETE": ("DeleteObject", objects.delete),
            },
        )


class _BodyWatch:
    """Whether the request body has been read to its end; and reading away what is left
    of a small one, so that a refusal answered before reading it leaves the connection
    ready for the client's next request (else its bytes would be taken for one)."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.done = False
        self.received = 0  # body bytes, for the access log and the metrics

    async def receive(self) -> Message:
        message = await self._receive()
        self.received += len(message.get("body", b""))
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self.done = True
        return message

    async def read_away(self, headers: dict[bytes, bytes]) -> bool:
        """True when nothing is left unread (now)."""
        declared = declared_body(headers)
        if self.done or declared == 0:
            return True
        if declared is None or declared > DRAIN_BYTES:
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_SECONDS):
                while not self.done:
                    await self.receive()
        return self.done


def _continue_withheld(headers: dict[bytes, bytes]) -> bool:
    """Whether the request asked for ``100 Continue`` but has no body, so that Granian
    sends the final response alone (as RFC 9110 allows). The botocore inside aws-cli v1
    keeps that response's status line on the pooled connection and, on the connection's
    next ``Expect`` request, reads it instead of the real one, which it then takes for a
    header ('ETag' missing: an upload after an empty file fails). A connection closed
    with this response is never asked again."""
    expect = headers.get(b"expect", b"").lower() == b"100-continue"
    return expect and declared_body(headers) == 0


class S3App:
    def __init__(self, stowage: Stowage) -> None:
        self.stowage = stowage
        self.state = State({"stowage": stowage})  # what the shared body reader looks for
        self.trusted = trusted_proxies(stowage.settings)
        self.cap = ClientCap(stowage.settings.max_requests_per_client)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        believe_proxy(scope, dict(scope["headers"]), self.trusted)
        address = self.cap.address(scope)
        if not self.cap.enter(address):  # answered SlowDown, as S3 answers a rate it refuses
            await self._serve(scope, receive, send, self.cap.refusal(address))
            return
        try:
            await self._serve(scope, receive, send)
        finally:
            self.cap.leave(address)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, refusal: str | None = None
    ) -> None:
        started = time.perf_counter()
        scope["app"] = self
        request_id = secrets.token_hex(8).upper()
        logs.request_id.set(request_id)  # every line this request logs carries it
        body = _BodyWatch(receive)
        receive = body.receive
        request = S3Request.of(scope, receive, self.stowage.settings.s3_api_domain)
        name = "unmatched"
        try:
            if refusal is not None:
                raise errors.slow_down(refusal)
            try:
                name, run = operation(request)
            except S3Error as refused:  # answered once the signature is known to be good,
                await self._authenticate(request)  # as S3 checks authentication first
                raise refused from None
            request.caller = await self._authenticate(request)
            response = await run(request, self.stowage)
        except S3Error as exc:
            response = error_response(exc, request, request_id)
        except StowageError as exc:
            response = error_response(s3_error(exc, request), request, request_id)
        except Exception:
            log.exception("unhandled error on S3 %s %s", request.method, request.resource)
            response = error_response(errors.internal_error(), request, request_id)
        response.headers["x-amz-request-id"] = request_id
        headers = dict(scope["headers"])
        if not await body.read_away(headers) or _continue_withheld(headers):
            # Answered before its body was read (a refusal), and too much of it is left to
            # read away; or answered where a client misreads what follows on the
            # connection: it cannot carry another request.
            response.headers["connection"] = "close"
        sent = 0

        async def counting_send(message: Message) -> None:
            nonlocal sent
            sent += len(message.get("body", b""))
            await send(message)

        await response(scope, receive, counting_send)
        seconds = time.perf_counter() - started
        route, status = f"s3:{name}", response.status_code
        self.stowage.metrics.observe(route, request.method, status, seconds, sent, body.received)
        logs.log_request(scope, route, status, seconds, sent, body.received)

    async def _authenticate(self, request: S3Request) -> Principal | None:
        """The caller the request's signature proves, or None for an unsigned request."""
        callers: dict[str, Principal] = {}

        async def secret_for(access_key_id: str) -> str | None:
            found = await self.stowage.access.key_for(access_key_id)
            if found is None:
                return None
            callers[access_key_id], secret = found
            return secret

        scope = request.scope
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query, headers = scope.get("query_string", b""), scope["headers"]
        now = datetime.fromtimestamp(self.stowage.clock.now_ms() / 1000, UTC)
        verified: Verified | None
        if sigv2.signed_with_v2(query, headers):
            if request.hosted:  # SigV2 signs the bucket in the path wherever it was named
                raw_path = b"/" + request.bucket.encode() + raw_path
            verified = await sigv2.verify(request.method, raw_path, query, headers, now, secret_for)
        else:
            verified = await sigv4.verify(request.method, raw_path, query, headers, now, secret_for)
        if verified is None:
            return None
        request.verified = verified
        return callers[verified.access_key_id]
