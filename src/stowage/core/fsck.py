"""Consistency check between the metadata rows and the stored blobs.

A crash between writing a blob and committing its row leaves an orphan blob (never a row
pointing at nothing: rows are committed last). ``check`` finds orphans, rows whose blob is
missing, and, with ``verify``, blobs whose sha256 no longer matches; ``fix`` removes the
orphans. Blobs younger than ``grace_s`` are left alone: they may belong to an upload that
has not committed its row yet.

On a blob store with multipart uploads of its own (``ports.BlobParts``) a crash can also
leave one of those that no upload row holds: its bytes are in no inventory, so they are
checked apart (``orphan_uploads``, by the store's upload id), under the same grace, and
``fix`` aborts them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from .clock import Clock
from .ports import BlobStore, DirectBlobStore, MetadataStore


@dataclass
class FsckReport:
    blobs: int = 0
    rows: int = 0
    orphans: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # public ids
    corrupt: list[str] = field(default_factory=list)  # public ids
    removed: list[str] = field(default_factory=list)
    orphan_uploads: list[str] = field(default_factory=list)  # the blob store's upload ids
    aborted: list[str] = field(default_factory=list)
    verified: int = 0

    @property
    def clean(self) -> bool:
        return not (self.orphans or self.missing or self.corrupt or self.orphan_uploads)


async def check(
    meta: MetadataStore,
    blobs: BlobStore,
    clock: Clock,
    *,
    verify: bool = False,
    fix: bool = False,
    grace_s: float = 3600,
    progress: Callable[[int], None] | None = None,
) -> FsckReport:
    stored = await blobs.inventory()
    references = await meta.blob_references()
    # Bytes of uploads still in progress: the reaper removes them when their time comes.
    staged = await meta.staging_keys() | await meta.part_keys()
    report = FsckReport(blobs=len(stored), rows=len(references))
    settled_before = clock.now_ms() / 1000 - grace_s
    report.orphans = sorted(
        key
        for key, modified in stored.items()
        if key not in references and key not in staged and modified <= settled_before
    )
    report.missing = sorted(pid for key, (pid, _, _) in references.items() if key not in stored)
    if verify:
        for key, (public_id, size, sha256) in references.items():
            if key not in stored or sha256 is None:  # no digest to check yet (digests.py)
                continue
            digest = hashlib.sha256()
            async for chunk in await blobs.read(key, 0, size):
                digest.update(chunk)
            if digest.hexdigest() != sha256:
                report.corrupt.append(public_id)
            report.verified += 1
            if progress:
                progress(report.verified)
        report.corrupt.sort()
    if fix:
        for key in report.orphans:
            await blobs.delete(key)
            report.removed.append(key)
    parts = blobs.parts if isinstance(blobs, DirectBlobStore) else None
    if parts is not None:
        held = await meta.backing_ids()
        orphan_uploads = {  # upload id → the blob key it would complete into
            upload_id: key
            for upload_id, (key, started) in (await parts.in_progress()).items()
            if upload_id not in held and started <= settled_before
        }
        report.orphan_uploads = sorted(orphan_uploads)
        for upload_id, key in orphan_uploads.items() if fix else ():
            await parts.abort(key, upload_id)
            report.aborted.append(upload_id)
    return report
