"""``bench/soak.py`` stays runnable: a short soak with a few operators passes its own checks
(records equal placements, figures equal records, no error in the server's log), and bad
options are refused before any server starts.

The soak is a benchmark: nothing here asserts a time or a figure of performance.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SOAK = Path(__file__).resolve().parent.parent / "bench" / "soak.py"
SUMMARY_LINES = (
    "calls placed: ",
    "records stored: ",
    "calls per outcome: ",
    "calls that reached a group: ",
    "operators' answered calls ",
    "offer latency ",
    "API errors: 0",
    "operator streams: 20,",
    "supervisor streams: 1,",
    "server RSS: ",
    "server RSS slope after warm-up: ",
    "server CPU: ",
    "server log: ",
    "result: PASS",
)


def soak(*options: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SOAK), *options],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_short_soak_passes_its_checks_and_prints_the_summary() -> None:
    done = soak(
        "--minutes",
        "0.3",
        "--operators",
        "20",
        "--supervisors",
        "1",
        "--talk-median",
        "1",
        "--scale",
        "2",
        "--seed",
        "14",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for start in SUMMARY_LINES:
        assert any(line.startswith(start) for line in done.stdout.splitlines()), start
    placed = next(line for line in done.stdout.splitlines() if line.startswith("calls placed:"))
    assert int(placed.split()[2]) > 0


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--minutes", "0"], "--minutes"),
        (["--minutes", "nan"], "--minutes"),
        (["--operators", "many"], "--operators"),
        (["--operators", "0"], "--operators"),
        (["--calls-per-second", "-3"], "--calls-per-second"),
        (["--abandon", "1.5"], "--abandon"),
        (["--database", "sqlite:///tmp/x.db"], "postgresql+asyncpg://"),
        (["--event-bus", "kafka"], "--event-bus"),
        (["--groups", "1" * 400], "--groups"),
    ],
)
def test_bad_options_are_refused_before_anything_starts(
    options: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        soak_module().parse_args(options)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert complaint in err
    assert out == ""


def soak_module() -> ModuleType:
    """bench/soak.py, imported as the script imports its neighbours: with bench/ on the path
    while it loads (only then: its scripts' names must not shadow anything afterwards)."""
    if "soak" not in sys.modules:
        spec = importlib.util.spec_from_file_location("soak", SOAK)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(SOAK.parent))
        try:
            sys.modules["soak"] = module
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(SOAK.parent))
    return sys.modules["soak"]
