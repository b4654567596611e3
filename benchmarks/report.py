"""Rows of the benchmark table: a figure, the baseline it is read against, and the goal."""

from __future__ import annotations

import subprocess
import time
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Row:
    section: str
    workload: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    # The goal as text, and how to check it: on the ratio to the baseline, or on the value.
    goal: str = ""
    at_least_ratio: float | None = None
    at_most_value: float | None = None
    at_least_value: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline_value:
            return self.value / self.baseline_value
        return None

    @property
    def met(self) -> bool | None:
        checks = []
        if self.at_least_ratio is not None and self.ratio is not None:
            checks.append(self.ratio >= self.at_least_ratio)
        if self.at_most_value is not None:
            checks.append(self.value <= self.at_most_value)
        if self.at_least_value is not None:
            checks.append(self.value >= self.at_least_value)
        return all(checks) if checks else None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


def _number(x: float) -> str:
    return f"{x:.1f}" if abs(x) < 10 else f"{x:,.0f}"


def markdown(rows: list[Row]) -> str:
    lines = [
        "| section | workload | stowage | unit | baseline | baseline value | ratio | goal | met |",
        "|---|---|---:|---|---|---:|---:|---|:-:|",
    ]
    for r in rows:
        base = _number(r.baseline_value) if r.baseline_value is not None else ""
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        lines.append(
            f"| {r.section} | {r.workload} | {_number(r.value)} | {r.unit} | {r.baseline} "
            f"| {base} | {ratio} | {r.goal} | {met} |"
        )
    return "\n".join(lines)


def curl_seconds(args: list[str]) -> float:
    """Wall time of one curl transfer, body discarded: the client costs almost nothing."""
    out = subprocess.run(
        ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{time_total}", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout)


def parallel_curl_seconds(commands: list[list[str]]) -> float:
    """Wall time for several curl transfers run at once (e.g. ranges of one object)."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["curl", "-sS", "--fail", "-o", "/dev/null", *args], stderr=subprocess.PIPE
        )
        for args in commands
    ]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise RuntimeError(f"curl failed: {err.decode(errors='replace')}")
    return time.perf_counter() - start
