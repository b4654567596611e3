"""How people see sizes and times: one wording for the CLI and the console alike."""

from __future__ import annotations

from datetime import UTC, datetime

UNITS = ("KiB", "MiB", "GiB", "TiB")


def size_text(n: int | None, missing: str) -> str:
    """``512 B``, ``4.8 MiB``, ``1.2 TiB``; ``missing`` when there is no size yet."""
    if n is None:
        return missing
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, UNITS[0]
    for bigger in UNITS[1:]:
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def utc_minute(ms: int | None, missing: str) -> str:
    """A millisecond timestamp as ``2026-11-24 21:53`` (UTC)."""
    if ms is None:
        return missing
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
