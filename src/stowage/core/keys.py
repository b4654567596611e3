"""S3 access keys: their ids, and the secrets derived from them.

An access key is a token row with an access key id, so a request signed with it has a
``Principal`` with a token id like any other (upload slots, ``creator_token_id`` and
revocation need nothing new). S3 signatures are HMACs keyed by the secret itself, so the
server must know every secret; rather than store them, it derives each from the server's
secret (the presign secret, shared by replicas) and a random salt per key. A database dump
alone therefore yields no secret, a new salt (rotation) replaces one key's secret, and a new
server secret replaces them all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string

ACCESS_KEY_PREFIX = "STW"  # like AWS's AKIA…: tells a stowage key apart at a glance
ACCESS_KEY_ID_LENGTH = 20  # AWS's length, which some clients check
_TAIL = ACCESS_KEY_ID_LENGTH - len(ACCESS_KEY_PREFIX)
# What ``key_for`` looks up: anything else from the wire is unknown without a query.
ACCESS_KEY_ID = re.compile(rf"^{ACCESS_KEY_PREFIX}[A-Z0-9]{{{_TAIL}}}$")
SECRET_LENGTH = 40  # AWS's length, which some clients check
_ID_ALPHABET = string.ascii_uppercase + string.digits
# Binds the HMAC to this one use of the server secret, which also signs presigned URLs.
_PURPOSE = b"stowage s3 secret key\n"


def new_access_key_id() -> str:
    """``STW`` and 17 random letters or digits: about 88 bits, so ids never collide in
    practice (the unique index would refuse it if one did)."""
    return ACCESS_KEY_PREFIX + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_TAIL))


def new_salt() -> str:
    return secrets.token_hex(16)


def key_token_hash(access_key_id: str) -> str:
    """The ``token_hash`` of a key's row. The column is unique and not null, so a key row
    needs one; a bearer token's hash is the SHA-256 of the token, and a token that hashes
    to this (``access-key:STW…``, guessable from the public id) must not log in, so bearer
    lookups skip key rows (``AccountStore.find_token``)."""
    return hashlib.sha256(f"access-key:{access_key_id}".encode()).hexdigest()


def derive_secret(server_secret: bytes, access_key_id: str, salt: str) -> str:
    """The key's secret access key: 40 url-safe base64 characters of
    HMAC-SHA256(server secret, purpose + id + salt). Deterministic, so every replica with
    the same server secret derives the same secret and none stores it."""
    message = _PURPOSE + access_key_id.encode() + b"\n" + salt.encode()
    digest = hmac.new(server_secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:SECRET_LENGTH]
