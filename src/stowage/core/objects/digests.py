"""The md5 and sha256 of objects whose bytes were assembled without being read: multipart
uploads joined from their parts' files (local disk) or completed inside the blob store
(S3). Those of a whole object cannot be made from its parts', and reading it again while
CompleteMultipartUpload waits would cost as much as the upload's parts took (1 GiB: about
4 of 9 seconds here). So completion answers at once, and the digests follow: the process
that completed the object reads it once, in the background, and writes them in; the reaper
does the same for any that a restart left without (after ``ORPHAN_AFTER_MS``, so as not
to race the first). Until then the object has no md5 and sha256 (Djinn shows null), as
documented; S3 shows its own ETag, which never depended on them.
"""

from __future__ import annotations

import asyncio
import logging

from ..models import StoredObject
from .base import ObjectsBase

log = logging.getLogger(__name__)

# How old an object without digests must be before the reaper hashes it: the completing
# process hashes its own, and reads a GiB in seconds.
ORPHAN_AFTER_MS = 10 * 60 * 1000


class Digests(ObjectsBase):
    def _digest_soon(self, obj: StoredObject) -> None:
        """Hash the object in the background, holding the task so it is not collected."""
        if obj.blob_key is None:
            return
        task = asyncio.create_task(self._digest(obj.id, obj.blob_key))
        self._hashing.add(task)
        task.add_done_callback(self._hashing.discard)

    async def _digest(self, object_id: int, blob_key: str) -> bool:
        """Write the blob's digests into the object while it still holds that blob."""
        try:
            written = await self._blobs.digest(blob_key)
        except FileNotFoundError:  # the object was replaced or deleted meanwhile
            return False
        except Exception:  # the reaper tries again later
            log.exception("hashing object %d failed", object_id)
            return False
        assert written.md5 is not None and written.sha256 is not None
        return await self._meta.set_digests(object_id, blob_key, written.md5, written.sha256)

    async def fill_digests(self, batch: int = 20) -> int:
        """Hash objects left without digests (a restart during ``_digest_soon``), oldest
        first; how many were done."""
        before = self._clock.now_ms() - ORPHAN_AFTER_MS
        done = 0
        for object_id, blob_key in await self._meta.undigested(before, batch):
            done += await self._digest(object_id, blob_key)
        return done
