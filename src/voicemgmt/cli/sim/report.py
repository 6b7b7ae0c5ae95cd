"""``sim``: what is printed — tables, and the summary of a load beside the server's figures.

The summary counts what became of the calls from the events seen, compares it with the
server's figures for the run's window (``server_agrees``), and gives the offer latency (call
placed to ``call.offered`` seen) and the API errors by kind.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from voicemgmt.cli.sim.api import iso
from voicemgmt.cli.sim.load import OUTCOMES, LoadRun


def print_table(rows: Iterable[Mapping[str, Any]], header: Iterable[str]) -> None:
    table = Table(show_header=True, header_style="bold")
    for column in header:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    Console(width=None if sys.stdout.isatty() else 240).print(table)


def percentile_ms(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of seconds, in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(1, math.ceil(q * len(ordered))) - 1] * 1000, 1)


def summarize(run: LoadRun) -> dict[str, Any]:
    """The run's result, as printed by ``--json``."""
    calls = run.feed.calls
    outcomes = Counter(c.outcome for c in calls.values() if c.outcome is not None)
    latencies = [
        c.offered_at - c.placed_at
        for c in calls.values()
        if c.offered_at is not None and c.placed_at is not None
    ]
    placed = len(calls)
    unfinished = placed - sum(outcomes.values())
    ended = {k: outcomes.get(k, 0) for k in OUTCOMES}
    other = sum(n for k, n in outcomes.items() if k not in OUTCOMES)
    server = run.figures
    agrees = (
        None
        if server is None
        else server["offered"] == placed - unfinished
        and all(server[k] == ended[k] for k in OUTCOMES)
    )
    until = run.finished or datetime.now(UTC)
    return {
        "url": run.plan.base_url,
        "since": iso(run.started) if run.started else None,
        "until": iso(until + timedelta(seconds=1)),
        "seconds": round(run.elapsed, 3),
        "rate": run.plan.rate,
        "duration": run.plan.duration,
        "operators": len(run.operator_tokens),
        "operators_left": "online" if run.plan.leave_online else "restored",
        "placed": placed,
        **ended,
        "other_outcomes": other,
        "unfinished": unfinished,
        "offer_latency_ms": {
            "p50": percentile_ms(latencies, 0.5),
            "p99": percentile_ms(latencies, 0.99),
            "samples": len(latencies),
        },
        "answers_lost": run.answers_lost,
        "api_errors": sum(run.api.errors.values()),
        "api_error_kinds": dict(run.api.errors),
        "api_error_examples": run.api.error_examples,
        "server": server,
        "server_agrees": agrees,
        "stream_reconnects": run.feed.reconnects,
        "events_lost": run.feed.events_lost,
        "stream_error": run.feed.error,
        "interrupted": run.interrupted,
    }


def print_summary(summary: dict[str, Any]) -> None:
    server = summary["server"] or {}
    rows: list[dict[str, Any]] = [
        {"": "placed", "seen": summary["placed"], "server": server.get("offered")}
    ]
    for name in OUTCOMES:
        rows.append({"": name, "seen": summary[name], "server": server.get(name)})
    rows.append({"": "unfinished", "seen": summary["unfinished"], "server": None})
    latency = summary["offer_latency_ms"]
    rows += [
        {"": "offer latency p50 ms", "seen": latency["p50"], "server": None},
        {"": "offer latency p99 ms", "seen": latency["p99"], "server": None},
        {"": "answers lost", "seen": summary["answers_lost"], "server": None},
        {"": "API errors", "seen": summary["api_errors"], "server": None},
    ]
    print_table(rows, ["", "seen", "server"])
    examples = summary["api_error_examples"]
    for kind, count in summary["api_error_kinds"].items():
        example = examples.get(kind)
        print(f"  {count} x {kind}" + (f" (e.g. {example})" if example else ""))
    agrees = summary["server_agrees"]
    print(
        f"{summary['since']} .. {summary['until']}: "
        + {None: "no server figures", True: "the server agrees", False: "the server DIFFERS"}[
            agrees
        ]
        + f"; operators {summary['operators_left']}"
        + ("; interrupted" if summary["interrupted"] else "")
    )
