"""The console's sign-in: the API token in an HttpOnly cookie, and CSRF protection.

The cookie holds the token itself, so a session is exactly as valid as its token (revoke
the token and the session ends) and the server keeps no session state. Page scripts never
see it (HttpOnly), other sites never send it (SameSite=Strict, path /console), and every
POST must also carry a CSRF value derived from the token with a server-side key and come
from this origin.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "stowage_console"
MAX_AGE_S = 12 * 3600


def csrf_key(presign_secret: bytes) -> bytes:
    return hmac.new(presign_secret, b"stowage console csrf", hashlib.sha256).digest()


def csrf_token(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()[:40]


def csrf_ok(key: bytes, token: str, sent: str | None) -> bool:
    """Constant-time, on bytes: ``compare_digest`` raises TypeError for a str with any
    non-ASCII character, and a form field or header can carry any."""
    expected = csrf_token(key, token).encode()
    return bool(sent) and hmac.compare_digest(expected, (sent or "").encode("utf-8", "replace"))


def same_origin(request: Request) -> bool:
    """Browsers send Origin on every POST; when present it must be this server."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    own = urlsplit(str(request.base_url))
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (own.scheme, own.netloc)


def remember(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=MAX_AGE_S,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def forget(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/console")
