"""Only the list benchmark of ``make bench``: ``python -m benchmarks.list_run [--quick]``.
It fills a million rows into a scratch SQLite store and a scratch PostgreSQL schema and
prints the list latencies with their goals, in a few minutes instead of the whole run's."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .report import markdown
from .run import RESULTS, Plan, list_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead")
    parser.add_argument("--dir", type=Path, default=RESULTS, help="where data lives during runs")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-list-", dir=args.dir))
    figures: dict[str, Any] = {}
    try:
        rows = list_rows(Plan.make(args.quick), work, figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(markdown(rows))


if __name__ == "__main__":
    main()
