"""Consistency check between the metadata rows and the stored blobs.

A crash between writing a blob and committing its row leaves an orphan blob (never a row
pointing at nothing: rows are committed last). ``check`` finds orphans, rows whose blob is
missing, and, with ``verify``, blobs whose sha256 no longer matches; ``fix`` removes the
orphans. Blobs younger than ``grace_s`` are left alone: they may belong to an upload that
has not committed its row yet.

Objects with the same content share one blob (``blobs`` rows, see meta/blobs.py). Every
object naming a blob must agree with the others and with its row on size and sha256
(``disagreeing`` lists those that do not: no fix, a person decides); ``verify`` reads a
shared blob once. A blob row nothing references and nothing released (its objects went
without passing through a delete, as with a removed user's) is ``unreferenced``; ``fix``
releases it, and the reaper collects it after its grace. Released ones are the reaper's
already and not reported.

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
from .ids import is_inline_key
from .objects.inline import read_blob
from .ports import BlobStore, DirectBlobStore, MetadataStore

Reference = tuple[str, int, str | None]  # public id, size, sha256 (None: not known yet)


@dataclass
class FsckReport:
    blobs: int = 0
    rows: int = 0
    orphans: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # public ids
    corrupt: list[str] = field(default_factory=list)  # public ids
    disagreeing: list[str] = field(default_factory=list)  # public ids
    unreferenced: list[str] = field(default_factory=list)  # blob keys
    removed: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # blob keys
    orphan_uploads: list[str] = field(default_factory=list)  # the blob store's upload ids
    aborted: list[str] = field(default_factory=list)
    verified: int = 0

    @property
    def clean(self) -> bool:
        return not (
            self.orphans
            or self.missing
            or self.corrupt
            or self.disagreeing
            or self.unreferenced
            or self.orphan_uploads
        )


def _disagree(references: list[Reference], row: tuple[int, str | None, bool] | None) -> bool:
    """Whether the rows sharing a blob, or its own row, say different things of it. A
    sha256 not known yet (an object assembled from parts, ``digests.py``) says nothing."""
    facts = {(size, sha256) for _, size, sha256 in references}
    known = {fact for fact in facts if fact[1] is not None}
    sizes = {size for size, _ in facts}
    if len(known) > 1 or len(sizes) > 1:
        return True
    if row is None:
        return False
    size, sha256 = row[:2]
    return sizes != {size} or (sha256 is not None and not known <= {(size, sha256)})


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
    rows = await meta.blob_rows()  # before the references: a row comes with its first
    references = await meta.blob_references()
    # Bytes of uploads still in progress: the reaper removes them when their time comes.
    staged = await meta.staging_keys() | await meta.part_keys()
    # Inline blobs (objects/inline.py) are in their rows, in no inventory: a row is there
    # with its bytes or not at all.
    inline = {key for key in rows if is_inline_key(key)}
    present = stored.keys() | inline
    report = FsckReport(blobs=len(present), rows=sum(len(refs) for refs in references.values()))
    settled_before = clock.now_ms() / 1000 - grace_s
    report.orphans = sorted(
        key
        for key, modified in stored.items()
        if key not in references and key not in rows and key not in staged
        if modified <= settled_before
    )
    report.missing = sorted(
        pid for key, refs in references.items() if key not in present for pid, _, _ in refs
    )
    report.disagreeing = sorted(
        pid
        for key, refs in references.items()
        if _disagree(refs, rows.get(key))
        for pid, _, _ in refs
    )
    report.unreferenced = sorted(
        key
        for key, (_, _, released) in rows.items()
        if not released and key not in references and key not in staged
    )
    if verify:
        await _verify(meta, blobs, present, references, report, progress)
    if fix:
        for key in report.orphans:
            await blobs.delete(key)
            report.removed.append(key)
        if report.unreferenced:
            await meta.release_unreferenced(report.unreferenced, clock.now_ms())
            report.released = list(report.unreferenced)
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


async def _verify(
    meta: MetadataStore,
    blobs: BlobStore,
    present: set[str],
    references: dict[str, list[Reference]],
    report: FsckReport,
    progress: Callable[[int], None] | None,
) -> None:
    """Re-hash each referenced blob once, however many objects share it."""
    for key, refs in references.items():
        if key not in present or all(sha256 is None for _, _, sha256 in refs):
            continue  # nothing to check it against yet (digests.py)
        _, size, _ = refs[0]
        digest = hashlib.sha256()
        async for chunk in await read_blob(meta, blobs, key, 0, size):
            digest.update(chunk)
        report.corrupt.extend(
            pid for pid, _, sha256 in refs if sha256 not in (None, digest.hexdigest())
        )
        report.verified += 1
        if progress:
            progress(report.verified)
    report.corrupt.sort()
