"""Measuring helpers shared by the benchmark modules."""

from __future__ import annotations

import subprocess


def curl_seconds(args: list[str]) -> float:
    """Wall time of one curl transfer, body discarded: the client costs almost nothing."""
    out = subprocess.run(
        ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{time_total}", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout)
