from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.event_conformance import Conformance
from tests.support import (
    LiveServer,
    SeededAccount,
    live_server,
    make_settings,
    postgres_database,
    seed_two_accounts,
)
from voicemgmt.config import Settings
from voicemgmt.web.event_schema import FRAMES, INTERNAL_EVENTS, event_schema

CONFORMANCE = pytest.StashKey[Conformance]()
TESTS_DIR = Path(__file__).parent


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


# Every event and frame the suite produces conforms to GET /events.schema.json
# (tests/event_conformance.py).


def pytest_configure(config: pytest.Config) -> None:
    config.stash[CONFORMANCE] = Conformance(event_schema())


@pytest.fixture(scope="session", autouse=True)
def _event_schema_checked(pytestconfig: pytest.Config) -> Iterator[None]:
    with pytestconfig.stash[CONFORMANCE].installed():
        yield


@pytest.fixture(autouse=True)
def _events_conform(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the test during which a frame or event not matching the schema was produced."""
    conformance = request.config.stash[CONFORMANCE]
    arbitrary = request.node.get_closest_marker("arbitrary_events") is not None
    conformance.take_problems()
    conformance.enabled = not arbitrary
    yield
    problems = conformance.take_problems()
    conformance.enabled = True
    if problems:
        shown = "\n".join(problems[:10])
        more = f"\n… and {len(problems) - 10} more" if len(problems) > 10 else ""
        pytest.fail(f"events that do not match /events.schema.json:\n{shown}{more}", pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run of the whole suite must produce every catalogued kind: a kind no test produces
    is either not real (drop it from the catalogue) or not tested (test it)."""
    config = session.config
    if not _whole_suite(config) or session.testscollected == 0:
        return
    catalogue = set(FRAMES) | set(INTERNAL_EVENTS)
    missing = sorted(catalogue - config.stash[CONFORMANCE].kinds_produced)
    if missing:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write("\n")
            reporter.write_line(f"event catalogue: no test produced {', '.join(missing)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _whole_suite(config: pytest.Config) -> bool:
    option = config.option
    if option.collectonly:
        return False
    narrowed = (option.keyword, option.markexpr, getattr(option, "lf", False), option.deselect)
    if any(narrowed) or option.maxfail:
        return False
    return all(Path(arg).resolve() == TESTS_DIR for arg in config.args)
