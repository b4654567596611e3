"""Requests signed by botocore's own SigV4 signers, as raw ASGI-style parts, for the S3
auth tests; and the aws-chunked encodings clients send.

botocore signs headers and presigned URLs and frames ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``
bodies (``httpchecksum.AwsChunkedWrapper``). It does not sign chunks, so :func:`signed_chunks`
does, following AWS's documented string to sign; tests/test_s3_chunked.py pins that to
AWS's published chunked-upload example.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpchecksum import apply_request_checksum

from stowage.api.s3.sigv4 import EMPTY_SHA256, Verified, verify

# The credentials and time of AWS's S3 SigV4 examples.
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NOW = datetime(2013, 5, 24, tzinfo=UTC)
SECRETS = {ACCESS_KEY: SECRET}


async def secret_for(access_key_id: str) -> str | None:
    return SECRETS.get(access_key_id)


@dataclass(frozen=True)
class Raw:
    """A request as the server sees it."""

    method: str
    path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""

    def header(self, name: str, value: str) -> Raw:
        """With header ``name`` set to ``value`` (replacing any of that name)."""
        kept = [(n, v) for n, v in self.headers if n.decode().lower() != name.lower()]
        return replace(self, headers=[*kept, (name.lower().encode(), value.encode())])

    def without(self, name: str) -> Raw:
        return replace(
            self, headers=[(n, v) for n, v in self.headers if n.decode().lower() != name]
        )

    def get(self, name: str) -> str:
        return next(v.decode() for n, v in self.headers if n.decode().lower() == name)

    async def verify(self, now: datetime = NOW) -> Verified | None:
        return await verify(self.method, self.path, self.query, self.headers, now, secret_for)


def aws_example(method: str, path: bytes, headers: dict[str, str], signature: str) -> Raw:
    """A request from AWS's S3 SigV4 examples: all of ``headers`` signed by
    :data:`ACCESS_KEY` on 20130524 in us-east-1, with the published ``signature``."""
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20130524/us-east-1/s3/aws4_request,"
        f"SignedHeaders={';'.join(sorted(headers))},Signature={signature}"
    )
    fields = [*headers.items(), ("authorization", authorization)]
    return Raw(method, path, b"", [(n.encode(), v.encode()) for n, v in fields])


def _raw(request: Any, body: bytes) -> Raw:
    url = urlsplit(request.url)
    headers = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    if not any(name == b"host" for name, _ in headers):
        headers.insert(0, (b"host", url.netloc.encode()))  # what the HTTP client adds
    return Raw(request.method, url.path.encode(), url.query.encode(), headers, body)


class _StreamingAuth(S3SigV4Auth):
    """botocore's header signer declaring signed aws-chunked payload, as SDKs that sign
    chunks do (the seed signature is then botocore's own)."""

    def __init__(self, payload: str, *args: Any) -> None:
        super().__init__(*args)
        self._payload = payload

    def payload(self, request: Any) -> str:
        return self._payload


def sign(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    region: str = "us-east-1",
    unsigned_payload: bool = False,
    streaming: str | None = None,
    trailer: str | None = None,
    now: datetime = NOW,
    access_key: str = ACCESS_KEY,
    secret: str = SECRET,
) -> Raw:
    """``url`` signed with the Authorization header by botocore.

    ``unsigned_payload`` is what boto3 does over https with a checksum; ``streaming`` one
    of the signed STREAMING-* payload values; ``trailer`` a checksum algorithm botocore
    sends as an unsigned aws-chunked trailer (``STREAMING-UNSIGNED-PAYLOAD-TRAILER``).
    """
    credentials = Credentials(access_key, secret)
    context: dict[str, Any] = {}
    headers = dict(headers or {})
    if trailer is not None:
        algorithm = {"algorithm": trailer, "in": "trailer", "name": f"x-amz-checksum-{trailer}"}
        context["checksum"] = {"request_algorithm": algorithm}
        shaped: dict[str, Any] = {"headers": headers, "body": body, "context": context}
        apply_request_checksum(shaped)
        body = shaped["body"].read()
    if unsigned_payload:
        context["client_config"] = SimpleNamespace(s3={"payload_signing_enabled": False})
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    request.context.update(context)
    if streaming is not None:
        auth: S3SigV4Auth = _StreamingAuth(streaming, credentials, "s3", region)
    else:
        auth = S3SigV4Auth(credentials, "s3", region)
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        auth.add_auth(request)
    return _raw(request, body)


def presign(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    *,
    expires: int = 3600,
    region: str = "us-east-1",
    now: datetime = NOW,
    token: str | None = None,
) -> Raw:
    """``url`` presigned by botocore's ``S3SigV4QueryAuth`` (what generate_presigned_url
    uses)."""
    request = AWSRequest(method=method, url=url, headers=headers or {})
    auth = S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET, token), "s3", region, expires)
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        auth.add_auth(request)
    return _raw(request, b"")


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def signed_chunks(
    data: bytes,
    auth: Verified,
    chunk_size: int,
    trailer: tuple[str, str] | None = None,
) -> bytes:
    """``data`` as a signed aws-chunked body chained from ``auth``'s seed signature, with
    a signed trailer (name, value) when given."""
    signing = auth.signing
    previous = signing.seed
    out = io.BytesIO()
    pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for piece in pieces:
        previous = _hmac_hex(
            signing.key,
            f"AWS4-HMAC-SHA256-PAYLOAD\n{signing.timestamp}\n{signing.scope}\n{previous}\n"
            f"{EMPTY_SHA256}\n{hashlib.sha256(piece).hexdigest()}",
        )
        out.write(b"%x;chunk-signature=%s\r\n%s" % (len(piece), previous.encode(), piece))
        if piece:
            out.write(b"\r\n")
    if trailer is not None:
        name, value = trailer
        canonical = f"{name}:{value}\n".encode()
        signature = _hmac_hex(
            signing.key,
            f"AWS4-HMAC-SHA256-TRAILER\n{signing.timestamp}\n{signing.scope}\n{previous}\n"
            f"{hashlib.sha256(canonical).hexdigest()}",
        )
        out.write(f"{name}:{value}\r\nx-amz-trailer-signature:{signature}\r\n".encode())
    out.write(b"\r\n")
    return out.getvalue()
