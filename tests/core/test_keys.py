"""S3 access keys through AccessService: secrets derived from the server secret and a salt
per key, the lookup the S3 dialect makes per request, revocation and rotation, and that a
key row is never a bearer token."""

from __future__ import annotations

import time

import pytest

from stowage.core.access import TOKEN_CACHE_SECONDS, AccessService, hash_token, parse_scopes
from stowage.core.errors import NotFound, Unauthenticated
from stowage.core.keys import (
    ACCESS_KEY_ID,
    SECRET_LENGTH,
    derive_secret,
    key_token_hash,
    new_access_key_id,
    new_salt,
)

from ..aio import run
from .wiring import SERVER_SECRET, Core

SCOPES = "object:read,write,delete namespace:read,write"


def test_a_secret_is_a_function_of_server_secret_key_and_salt() -> None:
    key, salt = new_access_key_id(), new_salt()
    secret = derive_secret(SERVER_SECRET, key, salt)
    assert len(secret) == SECRET_LENGTH
    assert derive_secret(SERVER_SECRET, key, salt) == secret
    others = {
        derive_secret(SERVER_SECRET, new_access_key_id(), salt),
        derive_secret(SERVER_SECRET, key, new_salt()),
        derive_secret(b"another server's secret", key, salt),
    }
    assert secret not in others and len(others) == 3


def test_access_key_ids_look_like_aws_ones() -> None:
    ids = {new_access_key_id() for _ in range(100)}
    assert len(ids) == 100
    for key in ids:
        assert len(key) == 20 and key.startswith("STW") and ACCESS_KEY_ID.match(key)


def test_key_for_finds_a_live_key_with_its_user_scopes_and_secret(core: Core) -> None:
    alice = run(core.user("alice"))
    issued = run(core.access.create_key("alice", parse_scopes(SCOPES), "laptop"))
    found = run(core.access.key_for(issued.key.access_key_id))
    assert found is not None
    principal, secret = found
    assert secret == issued.secret
    assert principal.user == alice.user
    assert principal.scopes == parse_scopes(SCOPES)
    assert principal.token_id == issued.key.id != alice.token_id
    # Another process (a worker, a replica with the same server secret) derives the same.
    other = AccessService(core.meta, core.clock, SERVER_SECRET)
    assert run(other.key_for(issued.key.access_key_id)) == found


def test_unknown_and_malformed_ids_have_no_key(core: Core) -> None:
    run(core.user("alice"))
    assert run(core.access.key_for(new_access_key_id())) is None
    for garbage in ("", "AKIAIOSFODNN7EXAMPLE", "STW\x00" + "A" * 16, "stw" + "A" * 17):
        assert run(core.access.key_for(garbage)) is None


def test_a_revoked_key_is_refused_everywhere_within_the_cache_second(core: Core) -> None:
    run(core.user("alice"))
    key = run(core.access.create_key("alice", parse_scopes(SCOPES), "ci")).key.access_key_id
    worker = AccessService(core.meta, core.clock, SERVER_SECRET)  # another process's cache
    deadline = time.monotonic() + TOKEN_CACHE_SECONDS
    assert run(worker.key_for(key)) is not None  # cached from here on

    run(core.access.revoke_key(key))
    assert run(core.access.key_for(key)) is None  # the revoking process forgets it at once
    while True:
        now = time.monotonic()
        found = run(worker.key_for(key))
        if now > deadline:
            assert found is None, "a cached revoked key was still honoured"
            break
        time.sleep(0.05)
    with pytest.raises(NotFound):
        run(core.access.revoke_key(key))
    listed = run(core.access.list_keys("alice"))
    assert [(k.access_key_id, bool(k.revoked_at_ms)) for k, _ in listed] == [(key, True)]


def test_rotation_replaces_the_secret_and_keeps_the_key(core: Core) -> None:
    run(core.user("alice"))
    issued = run(core.access.create_key("alice", parse_scopes(SCOPES), "ci"))
    key = issued.key.access_key_id
    assert run(core.access.key_for(key)) is not None  # cached with the old secret
    rotated = run(core.access.rotate_key(key))
    assert rotated.key.id == issued.key.id and rotated.key.scopes == issued.key.scopes
    assert rotated.secret != issued.secret
    found = run(core.access.key_for(key))
    assert found is not None and found[1] == rotated.secret
    run(core.access.revoke_key(key))
    with pytest.raises(NotFound):
        run(core.access.rotate_key(key))


def test_a_key_row_is_never_a_bearer_token(core: Core) -> None:
    """A key's token_hash is the SHA-256 of ``access-key:<id>``, which anyone who sees the
    public id can compute: presented as a bearer token, it must not log in."""
    alice = run(core.user("alice"))
    issued = run(core.access.create_key("alice", parse_scopes(SCOPES), "ci"))
    key = issued.key.access_key_id
    assert hash_token(f"access-key:{key}") == key_token_hash(key)  # the row's own hash
    for bearer in (f"access-key:{key}", key, issued.secret):
        with pytest.raises(Unauthenticated):
            run(core.access.authenticate(bearer))
    # Token commands see bearer tokens only: a key is listed, revoked and rotated as a key.
    tokens = run(core.access.list_tokens("alice"))
    assert [t.id for t, _ in tokens] == [alice.token_id]
    with pytest.raises(NotFound):
        run(core.access.revoke_token(issued.key.id))
    assert run(core.access.key_for(key)) is not None


def test_keys_need_an_existing_user(core: Core) -> None:
    with pytest.raises(NotFound):
        run(core.access.create_key("nobody", parse_scopes(SCOPES), "ci"))
    with pytest.raises(NotFound):
        run(core.access.list_keys("nobody"))
