"""``core``: the core services on SQLite and the in-memory blob store (``wiring``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .wiring import Core, migrate, open_core


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrate(tmp_path_factory.mktemp("core") / "stowage.db")


@pytest.fixture
def core(migrated_database: Path, tmp_path: Path) -> Iterator[Core]:
    database = tmp_path / "stowage.db"
    shutil.copyfile(migrated_database, database)
    with open_core(database) as services:
        yield services
