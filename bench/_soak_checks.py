"""What the soak checks after the load: records against calls, figures against records, the
server's log, and the slope of its memory.
(``bench/`` is a folder of scripts: ``soak.py`` imports this as ``_soak_checks``.)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

OUTCOMES = ("answered", "abandoned", "missed", "overflowed", "failed")
PAGE = 1000
LOG_LINES_SHOWN = 30

# (path, headers) → the JSON answer of a GET; raises if refused.
Get = Callable[[str, bytes], Awaitable[Any]]


def window(since: datetime, until: datetime) -> str:
    def iso(moment: datetime) -> str:
        return quote(moment.isoformat(timespec="milliseconds"))

    return f"since={iso(since)}&until={iso(until)}"


async def all_records(get: Get, headers: bytes, since: datetime, until: datetime) -> list[Any]:
    """Every call record of the window, page after page of ``GET /api/v1/call-records``."""
    records: list[Any] = []
    while True:
        page = await get(
            f"/api/v1/call-records?{window(since, until)}&limit={PAGE}&offset={len(records)}",
            headers,
        )
        records.extend(page["items"])
        if len(page["items"]) < PAGE:
            return records


def total_row(figures: dict[str, Any]) -> dict[str, int]:
    """The total row (``id_group`` null) of a figures answer, outcomes only."""
    rows = [g for g in figures["groups"] if g["id_group"] is None]
    total = rows[0] if rows else {}
    return {k: int(total.get(k, 0)) for k in ("offered", *OUTCOMES)}


@dataclass
class Comparison:
    """Rows of figures side by side; ``differs`` names the rows whose columns disagree."""

    columns: list[str]
    rows: dict[str, list[int | None]] = field(default_factory=dict)

    def add(self, name: str, values: list[int | None]) -> None:
        self.rows[name] = values

    @property
    def differs(self) -> list[str]:
        return [n for n, v in self.rows.items() if len({x for x in v if x is not None}) > 1]

    def lines(self) -> list[str]:
        width = max(len(n) for n in self.rows)
        out = [f"{'':<{width}}  " + "  ".join(f"{c:>11}" for c in self.columns)]
        for name, values in self.rows.items():
            cells = "  ".join(f"{'-' if v is None else v:>11}" for v in values)
            mark = "  <- DIFFERS" if name in self.differs else ""
            out.append(f"{name:<{width}}  {cells}{mark}")
        return out


def outcome_counts(outcomes: list[str | None]) -> Counter[str]:
    return Counter(o if o is not None else "unfinished" for o in outcomes)


# --- the server's log --------------------------------------------------------------------------


@dataclass
class LogScan:
    errors: list[str] = field(default_factory=list)  # ERROR, CRITICAL, a traceback, not JSON
    warnings: list[str] = field(default_factory=list)
    lines: int = 0


def scan_log(path: Path) -> LogScan:
    """The server logs JSON lines (``VM_LOG_FORMAT=json``): any line at WARNING or above, with
    an exception, or that is not a JSON log line at all (a raw traceback) is counted."""
    scan = LogScan()
    if not path.exists():
        return scan
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        scan.lines += 1
        try:
            entry = json.loads(line)
            level = str(entry.get("level", "")).upper()
        except (ValueError, AttributeError):
            scan.errors.append(line)
            continue
        if level in ("ERROR", "CRITICAL") or "exception" in entry or "Traceback" in line:
            scan.errors.append(line)
        elif level == "WARNING":
            scan.warnings.append(line)
    return scan


# --- memory ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the load started
    rss_kib: int
    server_cpu: float  # CPU seconds of the server so far
    client_cpu: float  # CPU seconds of this process so far
    placed: int
    ended: int


def slope_per_minute(samples: list[Sample]) -> tuple[float, float] | None:
    """Least-squares slope of RSS (KiB per minute) and the fitted RSS at the first sample;
    None with fewer than three samples."""
    if len(samples) < 3:
        return None
    xs = [s.at / 60 for s in samples]
    ys = [float(s.rss_kib) for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return slope, mean_y + slope * (xs[0] - mean_x)
