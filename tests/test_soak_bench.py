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


# --- the checks the soak's verdict rests on ---------------------------------------------------


def test_the_log_scan_counts_warnings_errors_tracebacks_and_foreign_lines(tmp_path: Path) -> None:
    checks = soak_checks()
    log = tmp_path / "server.log"
    log.write_text(
        '{"time": "t", "level": "info", "logger": "x", "message": "started"}\n'
        '{"time": "t", "level": "warning", "logger": "x", "message": "slow"}\n'
        '{"time": "t", "level": "error", "logger": "x", "message": "broken"}\n'
        '{"time": "t", "level": "info", "logger": "x", "message": "m", "exception": "E"}\n'
        "Traceback (most recent call last):\n"
        "\n"
    )
    scan = checks.scan_log(log)
    assert scan.lines == 5
    assert [line[-10:] for line in scan.warnings] == ['": "slow"}']
    assert len(scan.errors) == 3
    assert scan.errors[-1].startswith("Traceback")


def test_the_memory_slope_is_the_least_squares_fit_in_kib_per_minute() -> None:
    checks = soak_checks()
    samples = [checks.Sample(60.0 * m, 1000 + 5 * m + (m % 2), 0.0, 0.0, 0, 0) for m in range(7)]
    fit = checks.slope_per_minute(samples)
    assert fit is not None
    slope, start = fit
    assert round(slope, 2) == 5.0
    assert round(start, 2) == 1000.43
    assert checks.slope_per_minute(samples[:2]) is None


def test_a_comparison_names_the_rows_whose_sources_disagree() -> None:
    comparison = soak_checks().Comparison(["load", "stream", "records"])
    comparison.add("answered", [10, 10, 10])
    comparison.add("missed", [2, 2, 3])
    comparison.add("offered", [None, 5, 5])
    assert comparison.differs == ["missed"]
    assert comparison.lines()[2].endswith("<- DIFFERS")


def soak_checks() -> ModuleType:
    soak_module()
    return sys.modules["_soak_checks"]
