from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    LiveServer,
    SeededAccount,
    live_server,
    make_settings,
    postgres_database,
    seed_two_accounts,
)
from voicemgmt.config import Settings


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'vm.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def seeded(settings: Settings) -> tuple[SeededAccount, SeededAccount]:
    return seed_two_accounts(settings)


@pytest.fixture
def acme(seeded: tuple[SeededAccount, SeededAccount]) -> SeededAccount:
    return seeded[0]


@pytest.fixture
def globex(seeded: tuple[SeededAccount, SeededAccount]) -> SeededAccount:
    return seeded[1]


@pytest.fixture
def server(settings: Settings, seeded: tuple[SeededAccount, SeededAccount]) -> Iterator[LiveServer]:
    with live_server(settings) as running:
        yield running
