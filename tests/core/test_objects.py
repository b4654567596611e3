"""The object lifecycle through ObjectService itself: the three steps, whole-object puts
under each policy, expiry and reaping, and who may see what. The HTTP tests cover the same
ground through both APIs; these say where a failure lies when the core is changed."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from pathlib import Path

import pytest

from stowage.core.access import Principal
from stowage.core.errors import FieldErrors, Forbidden, Gone, Invalid, NotFound, Problem
from stowage.core.models import ContentType, ObjectState, StoredObject
from stowage.core.objects import ANY_NAMES, UNIQUE_NAMES
from stowage.core.objects.digests import ORPHAN_AFTER_MS
from stowage.core.presign import Grant, Presigner

from ..aio import chunks, run
from .wiring import Core

TEXT = b"hello, stowage\n" * 100
PRESIGNER = Presigner(b"a test secret of 32 bytes, or so")


def signed(core: Core, method: str, public_id: str) -> Grant:
    """What a presigned URL for ``method`` on the object proves, once verified."""
    now = core.clock.now_ms()
    expires = now // 1000 + 60
    signature = PRESIGNER.sign(method, public_id, expires)
    return PRESIGNER.verify(method, public_id, str(expires), signature, now)


async def upload(core: Core, public_id: str, body: bytes) -> None:
    """A presigned PUT of ``body``."""
    ticket = await core.objects.upload_target(signed(core, "PUT", public_id))
    await core.objects.upload(ticket, chunks(body, 1000))


async def read_all(core: Core, public_id: str) -> bytes:
    """What a presigned download of the object streams."""
    obj = await core.objects.signed_download(signed(core, "GET", public_id))
    return b"".join([part async for part in await core.objects.read(obj, 0, obj.size or 0)])


def test_an_object_goes_from_create_to_upload_complete_read_and_delete(core: Core) -> None:
    alice = run(core.user("alice"))
    made = run(core.objects.create(alice, "report.txt", ContentType.TEXT, {"build": "7"}, None))
    assert (made.state, made.metadata) == (ObjectState.UPLOADING, {"build": "7"})

    with pytest.raises(Invalid):  # no bytes to hand out yet
        run(read_all(core, made.public_id))
    run(upload(core, made.public_id, TEXT))
    uploaded = run(core.objects.get(alice, made.public_id))
    assert (uploaded.size, uploaded.sha256) == (len(TEXT), hashlib.sha256(TEXT).hexdigest())
    with pytest.raises(Invalid):  # not downloadable before it is complete
        run(core.objects.downloadable(alice, made.public_id))

    done = run(core.objects.complete(alice, made.public_id))
    assert done.state is ObjectState.READ_ONLY
    got = run(core.objects.get(alice, made.public_id))
    assert got == done
    assert run(core.objects.read_bytes(got, 7, 7)) == b"stowage"
    assert run(read_all(core, made.public_id)) == TEXT

    assert run(core.objects.delete(alice, made.public_id)).state is ObjectState.DELETED
    with pytest.raises(Gone):
        run(core.objects.downloadable(alice, made.public_id))
    assert run(core.stored_blobs()) != set()  # released: the collector removes it after a grace
    core.clock.advance(core.objects.limits.blob_grace_ms)
    assert run(core.objects.collect_blobs()) == 1
    assert run(core.stored_blobs()) == set()


def test_a_put_with_unique_names_completes_at_once_under_a_name_of_its_own(core: Core) -> None:
    bob = run(core.user("bob"))
    stored = run(core.objects.put(bob, "logs.tgz", None, chunks(TEXT, 64), None, UNIQUE_NAMES))
    assert (stored.state, stored.content_type) == (ObjectState.READ_ONLY, ContentType.TGZ)
    assert stored.md5 == hashlib.md5(TEXT).hexdigest()
    assert run(read_all(core, stored.public_id)) == TEXT

    with pytest.raises(FieldErrors) as refused:
        run(core.objects.put(bob, "logs.tgz", None, chunks(b"again", 5), None, UNIQUE_NAMES))
    assert refused.value.problems == (Problem("name", "taken"),)
    assert run(core.stored_blobs()) == {stored.blob_key}  # the refused one kept none

    with pytest.raises(FieldErrors) as refused:  # every problem at once, none stored
        run(core.objects.put(bob, "a b", None, chunks(b"", 1), None, UNIQUE_NAMES))
    assert [(p.field, p.code) for p in refused.value.problems] == [
        ("name", "pattern"),
        ("file", "required"),
    ]
    assert run(core.stored_blobs()) == {stored.blob_key}


def test_a_put_with_any_names_keeps_both_objects_of_a_name(core: Core) -> None:
    bob = run(core.user("bob"))
    first = run(core.objects.put(bob, "a build.bin", None, chunks(TEXT, 64), None, ANY_NAMES))
    second = run(core.objects.put(bob, "a build.bin", None, chunks(b"", 1), None, ANY_NAMES))
    assert first.public_id != second.public_id
    assert (second.size, second.content_type) == (0, ContentType.BINARY)
    assert run(read_all(core, first.public_id)) == TEXT


def test_an_object_past_its_ttl_is_gone_and_the_reaper_removes_it(core: Core) -> None:
    alice = run(core.user("alice"))
    made = run(core.objects.create(alice, "brief.txt", ContentType.TEXT, None, 60_000))
    run(upload(core, made.public_id, TEXT))
    run(core.objects.complete(alice, made.public_id))

    core.clock.advance(59_999)
    assert run(core.objects.reap()).object_ids == []
    assert run(core.objects.get(alice, made.public_id)).public_id == made.public_id
    core.clock.advance(1)
    with pytest.raises(NotFound):
        run(core.objects.get(alice, made.public_id))
    assert run(core.objects.reap()).object_ids == [made.id]
    core.clock.advance(core.objects.limits.blob_grace_ms)
    assert run(core.objects.collect_blobs()) == 1
    assert run(core.stored_blobs()) == set()


def test_others_objects_are_not_found_and_a_missing_scope_is_forbidden(core: Core) -> None:
    alice, eve = run(core.user("alice")), run(core.user("eve"))
    mine = run(core.objects.put(alice, "mine.txt", None, chunks(TEXT, 1000), None, UNIQUE_NAMES))
    for other_users_call in (core.objects.get, core.objects.delete):
        with pytest.raises(NotFound):
            run(other_users_call(eve, mine.public_id))

    write_only = run(core.token("alice", "object:write"))
    with pytest.raises(Forbidden):
        run(core.objects.get(write_only, mine.public_id))
    with pytest.raises(Forbidden):
        run(core.objects.delete(write_only, mine.public_id))
    read_only = run(core.token("alice", "object:read"))
    with pytest.raises(Forbidden):
        run(core.objects.put(read_only, "more.txt", None, chunks(TEXT, 1000), None, ANY_NAMES))
    assert run(core.objects.get(read_only, mine.public_id)) == mine


def test_a_multipart_upload_left_past_its_deadline_is_reaped_with_its_parts(core: Core) -> None:
    alice = run(core.user("alice", "object:read,write,delete namespace:read,write"))
    bucket = run(core.namespaces.create_root(alice, "builds"))
    upload = run(core.objects.start_multipart(alice, bucket, "big.bin", None, None))
    run(core.objects.put_part(alice, upload, 1, chunks(TEXT, 1000), None))
    assert len(run(core.stored_blobs())) == 1
    core.clock.advance(24 * 3600 * 1000 - 1)
    assert run(core.objects.reap_multipart()) == 0
    core.clock.advance(1)
    assert run(core.objects.reap_multipart()) == 1
    assert run(core.stored_blobs()) == set()
    with pytest.raises(NotFound):  # NoSuchUpload
        run(core.objects.multipart(alice, bucket, "big.bin", upload.upload_id))


async def assembled(core: Core, alice: Principal, name: str) -> tuple[StoredObject, bytes]:
    """An object completed from a multipart upload (of one part: the others would need
    5 MiB each, past these tests' upload limit); its bytes."""
    bucket = await core.namespaces.create_root(alice, name)
    upload = await core.objects.start_multipart(alice, bucket, f"{name}.bin", None, None)
    part = await core.objects.put_part(alice, upload, 1, chunks(TEXT, 1000), None)
    return await core.objects.complete_multipart(alice, upload, [(1, part.md5)]), TEXT


def test_an_assembled_object_is_readable_at_once_and_gets_its_digests_just_after(
    core: Core, tmp_path: Path
) -> None:
    async def flow() -> tuple[StoredObject, bytes]:
        alice = await core.user("alice", "object:read,write,delete namespace:read,write")
        obj, body = await assembled(core, alice, "builds")
        assert (obj.size, obj.md5, obj.sha256) == (len(body), None, None)
        read = b"".join([part async for part in await core.objects.read(obj, 0, len(body))])
        assert read == body
        deadline = time.monotonic() + 10
        while (await core.objects.get(alice, obj.id)).sha256 is None:
            assert time.monotonic() < deadline, "no digests after 10 s"
            await asyncio.sleep(0.01)
        shown = await core.objects.get(alice, obj.id)
        assert (shown.md5, shown.sha256) == digests(body)
        return obj, body

    obj, body = run(flow())
    # What a restart before the hashing ended leaves: the reaper makes them.
    with sqlite3.connect(tmp_path / "stowage.db") as db:
        db.execute("UPDATE objects SET md5 = NULL, sha256 = NULL WHERE id = ?", (obj.id,))
    assert run(core.objects.fill_digests()) == 0  # its own process may still be at it
    core.clock.advance(ORPHAN_AFTER_MS)
    assert run(core.objects.fill_digests()) == 1
    shown = run(core.meta.get_object(obj.id))
    assert shown is not None and (shown.md5, shown.sha256) == digests(body)
    assert run(core.objects.fill_digests()) == 0


def digests(body: bytes) -> tuple[str, str]:
    return hashlib.md5(body).hexdigest(), hashlib.sha256(body).hexdigest()
