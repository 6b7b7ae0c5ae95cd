"""The soak's printout, and its verdict (the exit code).
(``bench/`` is a folder of scripts: ``soak.py`` imports this as ``_soak_report``.)
"""

from __future__ import annotations

import os
import platform
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _soak_checks import (
    LOG_LINES_SHOWN,
    OUTCOMES,
    Comparison,
    Sample,
    scan_log,
    slope_per_minute,
    total_row,
)
from _support import percentile_ms

if TYPE_CHECKING:
    from soak import Run

CLIENT_CPU_WARNING = 0.7  # cores: above this the load generator may be the bottleneck


def header(run: Run) -> None:
    args = run.args
    database = "PostgreSQL" if args.database else "SQLite"
    calls = run.rate * args.minutes * 60
    print(
        f"soak: {args.operators} operators in {args.groups} groups, {args.supervisors} "
        f"supervisors, {2 * args.groups} numbers ({args.groups} with an IVR menu); "
        f"{database}, {args.event_bus} event bus"
    )
    print(
        f"load: {run.rate:.1f} calls/s for {args.minutes:g} min (~{calls:,.0f} calls), talk "
        f"median {run.behaviour.talk_median:g} s, abandon {run.behaviour.abandon:.0%}; warm-up "
        f"{args.warmup_minutes:g} min, samples every {args.sample_seconds:g} s"
    )
    load = Path("/proc/loadavg").read_text().split()[0]
    print(
        f"machine: nproc {len(os.sched_getaffinity(0))}, {platform.machine()}, Python "
        f"{platform.python_version()}, load average {load} before the run",
        flush=True,
    )


def progress_line(sample: Sample, first: Sample) -> str:
    wall = max(sample.at - first.at, 1e-9)
    return (
        f"[{sample.at / 60:6.1f} min] placed {sample.placed}, ended {sample.ended}, "
        f"server RSS {sample.rss_kib / 1024:.1f} MiB, server cpu "
        f"{(sample.server_cpu - first.server_cpu) / wall:.2f}, load cpu "
        f"{(sample.client_cpu - first.client_cpu) / wall:.2f}"
    )


def final(run: Run) -> int:
    """Print the figures; 0 if every check holds, else 1."""
    traffic, streams, args = run.traffic, run.streams, run.args
    assert traffic is not None
    assert streams is not None
    failures: list[str] = []
    calls = traffic.calls
    print()
    print(
        f"calls placed: {traffic.placed} in {run.arrivals_seconds / 60:.1f} min "
        f"({traffic.placed / max(run.arrivals_seconds, 1e-9):.1f}/s); drained in "
        f"{run.drain_seconds:.1f} s; placement lag p99 {percentile_ms(traffic.lags, 0.99):.0f} ms"
    )

    # records against placements
    ids = [r["id_call"] for r in run.records]
    duplicates = len(ids) - len(set(ids))
    missing = len(calls.keys() - set(ids))
    extra = len(set(ids) - calls.keys())
    print(
        f"records stored: {len(run.records)} (placed {traffic.placed}); placed calls without a "
        f"record {missing}, records of no placed call {extra}, duplicate records {duplicates}"
    )
    if len(run.records) != traffic.placed or missing or extra or duplicates:
        failures.append("records differ from the calls placed")

    # outcomes: the load's view, the stream's, the records', the figures'
    expected = Counter(c.expected() for c in calls.values())
    streamed = Counter(c.outcome or "unfinished" for c in calls.values())
    stored = Counter(r["outcome"] for r in run.records)
    grouped = Counter(r["outcome"] for r in run.records if r["id_group"] is not None)
    figures, supervision = total_row(run.figures), total_row(run.supervision)
    views = Comparison(["load", "stream", "records"])
    ended = sum(1 for c in calls.values() if c.outcome is not None)
    views.add("calls", [traffic.placed, ended, len(run.records)])
    for name in (*OUTCOMES, "unexpected", "unfinished"):
        views.add(name, [expected[name], streamed[name], stored[name]])
    print("calls per outcome: what the load did / the first supervisor's call.ended / records")
    print("\n".join("  " + line for line in views.lines()))
    sums = Comparison(["records", "figures", "supervision"])
    sums.add("offered", [sum(grouped.values()), figures["offered"], supervision["offered"]])
    for name in OUTCOMES:
        sums.add(name, [grouped[name], figures[name], supervision[name]])
    print(
        "calls that reached a group: records / GET /api/v1/figures / "
        "GET /api/v1/supervision/figures (total rows)"
    )
    print("\n".join("  " + line for line in sums.lines()))
    if views.differs or sums.differs:
        failures.append(f"figures differ: {', '.join(views.differs + sums.differs)}")
    strangers = sum(1 for c in traffic.early.values() if c.outcome is not None)
    if strangers:
        failures.append(f"the stream ended {strangers} calls the load did not place")
    if streamed["unfinished"]:
        failures.append(f"{streamed['unfinished']} calls never ended")
    twice = sum(1 for c in calls.values() if c.ends_seen > 1)
    if twice:
        failures.append(f"{twice} calls ended more than once on the stream")

    # operators: the supervisor's per-operator figures against the records
    by_record = Counter(r["id_op"] for r in run.records if r["outcome"] == "answered")
    by_figure = {o["id_op"]: o["answered"] for o in run.supervision.get("operators", [])}
    differing = sorted(
        i for i in set(by_record) | set(by_figure) if by_record.get(i, 0) != by_figure.get(i, 0)
    )
    print(
        f"operators' answered calls (supervision figures vs records, per operator): "
        f"{len(by_figure)} operators, {len(differing)} differ"
        + (f" (e.g. id_op {differing[:5]})" if differing else "")
    )
    if differing:
        failures.append("per-operator figures differ from the records")

    # latency, actions, errors
    direct, ivr = traffic.latencies, traffic.ivr_latencies
    print(
        f"offer latency (placement sent → first call.offered on the operator's banner), numbers "
        f"without IVR: p50 {percentile_ms(direct, 0.5):.1f} ms, p99 "
        f"{percentile_ms(direct, 0.99):.1f} ms ({len(direct)} calls); through the IVR menu "
        f"(prompts, keys, timeouts included): p50 {percentile_ms(ivr, 0.5):.0f} ms, p99 "
        f"{percentile_ms(ivr, 0.99):.0f} ms ({len(ivr)} calls)"
    )
    print(f"operator and caller requests accepted: {_counts(traffic.actions)}")
    print(f"refused as the call had moved on (404/409, normal races): {_counts(traffic.races)}")
    print(f"API errors: {sum(traffic.errors.values())}" + _examples(traffic.errors, traffic))
    if traffic.errors:
        failures.append("API requests failed")

    # streams
    for line in streams.summary():
        print(line)
    if streams.faults:
        failures.append(f"{streams.faults} sequence faults on the event streams")
    reconnects = sum(s.reconnects for s in streams.all)
    if reconnects:
        failures.append(f"{reconnects} stream reconnections")

    # memory and CPU
    _resources(run)

    # the log
    assert run.log_path is not None
    scan = scan_log(run.log_path)
    print(
        f"server log: {scan.lines} lines, {len(scan.errors)} errors (ERROR, CRITICAL, "
        f"exceptions, non-JSON lines), {len(scan.warnings)} warnings"
    )
    for line in (scan.errors + scan.warnings)[:LOG_LINES_SHOWN]:
        print(f"  {line[:2000]}")
    if scan.errors or scan.warnings:
        failures.append(f"{len(scan.errors)} errors and {len(scan.warnings)} warnings in the log")
    if args.seed is not None:
        print(f"seed: {args.seed}")
    print(
        "result: PASS"
        if not failures
        else "result: FAIL\n" + "\n".join(f"  - {reason}" for reason in failures)
    )
    return 1 if failures else 0


def _resources(run: Run) -> None:
    args, samples = run.args, run.samples
    if len(samples) < 2:
        print("server RSS: too few samples")
        return
    first, last = samples[0], samples[-1]
    steady = [s for s in samples if args.warmup_minutes * 60 <= s.at <= run.arrivals_seconds + 1e-6]
    print(
        f"server RSS: {first.rss_kib / 1024:.1f} MiB at the start, "
        f"{(steady[0].rss_kib if steady else last.rss_kib) / 1024:.1f} MiB after warm-up, "
        f"{last.rss_kib / 1024:.1f} MiB at the end, peak {run.peak_rss_kib / 1024:.1f} MiB "
        f"({len(samples)} samples)"
    )
    half = [s for s in steady if s.at >= run.arrivals_seconds / 2]
    for name, part in (("after warm-up", steady), ("over the last half", half)):
        fit = slope_per_minute(part)
        if fit is None:
            print(f"server RSS slope {name}: too few samples (run longer)")
            continue
        slope, start_kib = fit
        span = (part[-1].at - part[0].at) / 60
        print(
            f"server RSS slope {name}: {slope:+.1f} KiB/min over {span:.1f} min "
            f"({slope * span / start_kib:+.2%} over the span, "
            f"{slope * 60 / start_kib:+.2%} per hour)"
        )
    if args.samples is not None:
        with args.samples.open("w") as out:
            out.write("seconds,rss_kib,server_cpu_s,load_cpu_s,placed,ended\n")
            for s in samples:
                out.write(
                    f"{s.at:.1f},{s.rss_kib},{s.server_cpu:.2f},{s.client_cpu:.2f},"
                    f"{s.placed},{s.ended}\n"
                )
        print(f"samples written to {args.samples}")
    wall = max(last.at - first.at, 1e-9)
    server_cpu = last.server_cpu - first.server_cpu
    client_cpu = last.client_cpu - first.client_cpu
    per_call = server_cpu / max(last.placed, 1) * 1000
    print(
        f"server CPU: {per_call:.2f} ms per call ({server_cpu / wall:.2f} cores on average); "
        f"load generator (this process) CPU: {client_cpu / wall:.2f} cores"
    )
    if client_cpu / wall > CLIENT_CPU_WARNING:
        print("warning: the load generator used much CPU: it may have been the bottleneck")


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counter.items())) or "none"


def _examples(errors: Counter[str], traffic: Any) -> str:
    if not errors:
        return ""
    kinds = ", ".join(f"{n} {kind}" for kind, n in errors.most_common())
    return f" ({kinds})\n" + "\n".join(f"  e.g. {e}" for e in traffic.examples)
