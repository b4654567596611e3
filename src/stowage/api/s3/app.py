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
from ...service import Stowage
from ..common.middleware import DRAIN_BYTES, DRAIN_SECONDS, declared_body
from . import batch, buckets, errors, multipart, objects, sigv2, sigv4
from .errors import S3Error
from .errors_map import s3_error
from .requests import S3Request
from .responses import error_response

log = logging.getLogger(__name__)

Operation = Callable[[S3Request, Stowage], Awaitable[Response]]
# Sub-resources S3 has and stowage does not serve: answered NotImplemented.
UNSERVED = (
    "acl",
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


def operation(request: S3Request) -> tuple[str, Operation]:
    """The operation a request asks for, by S3's rules, and its name for logs."""
    method, query = request.method, request.query
    if "\x00" in request.bucket or "\x00" in request.key:
        raise errors.invalid_request("bucket names and keys cannot contain NUL bytes")
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
        if method == "GET" and "uploads" in query:
            return "ListMultipartUploads", multipart.list_uploads
        found = {
            "PUT": ("CreateBucket", buckets.create),
            "HEAD": ("HeadBucket", buckets.head),
            "DELETE": ("DeleteBucket", buckets.delete),
            "GET": ("ListObjects", objects.list_objects),
        }.get(method)
    else:
        if "uploadId" in query:
            if method == "PUT" and "x-amz-copy-source" in request.headers:
                return "UploadPartCopy", multipart.upload_part_copy
            found = {
                "PUT": ("UploadPart", multipart.upload_part),
                "POST": ("CompleteMultipartUpload", multipart.complete),
                "DELETE": ("AbortMultipartUpload", multipart.abort),
                "GET": ("ListParts", multipart.list_parts),
            }.get(method)
            if found is None:
                raise errors.method_not_allowed(method)
            return found
        if method == "POST" and "uploads" in query:
            return "CreateMultipartUpload", multipart.create
        if method == "PUT" and "x-amz-copy-source" in request.headers:
            return "CopyObject", objects.copy
        found = {
            "PUT": ("PutObject", objects.put),
            "GET": ("GetObject", objects.get),
            "HEAD": ("HeadObject", objects.get),
            "DELETE": ("DeleteObject", objects.delete),
        }.get(method)
    if found is None:
        raise errors.method_not_allowed(method)
    return found


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


class S3App:
    def __init__(self, stowage: Stowage) -> None:
        self.stowage = stowage
        self.state = State({"stowage": stowage})  # what the shared body reader looks for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        scope["app"] = self
        request_id = secrets.token_hex(8).upper()
        logs.request_id.set(request_id)  # every line this request logs carries it
        body = _BodyWatch(receive)
        receive = body.receive
        request = S3Request.of(scope, receive)
        name = "unmatched"
        try:
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
        if not await body.read_away(dict(scope["headers"])):
            # Answered before its body was read (a refusal), and too much of it is left to
            # read away: the connection cannot carry another request.
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
        check = sigv2.verify if sigv2.signed_with_v2(query, headers) else sigv4.verify
        now = datetime.fromtimestamp(self.stowage.clock.now_ms() / 1000, UTC)
        verified = await check(request.method, raw_path, query, headers, now, secret_for)
        if verified is None:
            return None
        request.verified = verified
        return callers[verified.access_key_id]
