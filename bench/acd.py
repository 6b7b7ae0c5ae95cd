"""Benchmark of the routing core (ACD) alone: routing decisions per second.

Run::

    .venv/bin/python bench/acd.py [--operators 1000] [--groups 100] [--calls 200000]

1,000 operators in 100 groups (each operator in its own group at tier 1 and in a neighbour
group at tier 2), all online. Calls arrive on random groups while earlier calls are still in
progress; operators answer, talk and hang up; some offers time out; wrap-up is on; an operator
put on break by unanswered offers comes back online 30 s later, as people do (without that,
a long run drifts into a contact center where a fifth of the operators have left and 12,000
calls wait). A routing
decision is one offer of a call to an operator (``CallOffered``). The clock is simulated, so
the figure is the core's own cost: no I/O, no event loop. Goal (issue): >= 100,000 decisions/s.

Also printed: per-input latency p50/p99 (one core call: inbound, answer, hang-up, tick), the
time spent reading ``next_wakeup`` (not in the figure, as from the start), the peak memory of
the core's state, measured with tracemalloc in a second, shorter pass, and decisions/s of
shorter passes with every group on one strategy, and with ``tier_delay`` on half the groups.

The garbage collector is set as ``voicemgmt serve`` sets it (``voicemgmt.runtime``), before the
core is built, as the server builds an account's core after it; ``--default-gc`` leaves
CPython's defaults.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import tracemalloc
from collections import deque
from typing import NamedTuple

from voicemgmt.domain.routing import events as ev
from voicemgmt.domain.routing.core import RoutingCore
from voicemgmt.domain.routing.model import GroupPolicy, Presence, Side, Strategy
from voicemgmt.runtime import tune_garbage_collector

STRATEGIES = list(Strategy)
BREAK_SECONDS = 30.0


def build(
    operators: int,
    groups: int,
    strategies: list[Strategy] = STRATEGIES,
    tier_delay: float | None = None,
) -> RoutingCore:
    core = RoutingCore()
    for group in range(1, groups + 1):
        core.configure_group(
            GroupPolicy(
                group,
                strategy=strategies[group % len(strategies)],
                ring_timeout=15,
                wrap_up=5,
                max_wait=300,
                tier_delay=tier_delay if group % 2 else None,
            )
        )
    for operator in range(1, operators + 1):
        home = (operator - 1) % groups + 1
        neighbour = home % groups + 1
        core.configure_operator(operator, {home: 1, neighbour: 2})
        core.set_presence(0.0, operator, Presence.ONLINE)
    return core


class Run(NamedTuple):
    decisions: int
    spent: float  # seconds in the core's inputs
    latencies: list[float]  # of each input
    wakeup: float  # seconds reading next_wakeup, once per step


def run(core: RoutingCore, calls: int, groups: int, seed: int) -> Run:
    """Drive ``calls`` calls through the core."""
    rng = random.Random(seed)
    now = 1.0
    decisions = 0
    spent = 0.0
    wakeup = 0.0
    latencies: list[float] = []
    talking: deque[tuple[float, str]] = deque()
    clock = time.perf_counter

    def feed(step_events: list[ev.RoutingEvent]) -> None:
        nonlocal decisions
        for event in step_events:
            if isinstance(event, ev.CallOffered):
                decisions += 1
                if rng.random() < 0.9:  # most offers are answered at once, some time out
                    answers.append((event.id_op, event.id_call))
            elif isinstance(event, ev.OperatorStatusChanged) and event.reason == "no_answer":
                breaks.append((now + BREAK_SECONDS, event.id_op))

    answers: list[tuple[int, str]] = []
    breaks: deque[tuple[float, int]] = deque()
    for n in range(calls):
        now += 0.01
        started = clock()
        step = core.inbound(now, f"c{n}", "33612345678", "33170200200", rng.randint(1, groups))
        latencies.append(clock() - started)
        feed(step.events)
        while answers:
            operator, call_id = answers.pop()
            if call_id in core.calls and operator in core.calls[call_id].ringing:
                started = clock()
                step = core.answer(now, operator, call_id)
                latencies.append(clock() - started)
                feed(step.events)
                talking.append((now + rng.uniform(1, 3), call_id))
        while talking and talking[0][0] <= now:
            _, call_id = talking.popleft()
            if call_id in core.calls:
                started = clock()
                step = core.hang_up(now, call_id, Side.CALLER)
                latencies.append(clock() - started)
                feed(step.events)
        while breaks and breaks[0][0] <= now:
            _, operator = breaks.popleft()
            started = clock()
            step = core.set_presence(now, operator, Presence.ONLINE)
            latencies.append(clock() - started)
            feed(step.events)
        started = clock()
        wake = core.next_wakeup
        wakeup += clock() - started
        if wake is not None and wake <= now:
            started = clock()
            step = core.tick(now)
            latencies.append(clock() - started)
            feed(step.events)
    spent = sum(latencies)
    return Run(decisions, spent, latencies, wakeup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--operators", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument(
        "--default-gc", action="store_true", help="CPython's collector settings, not the server's"
    )
    args = parser.parse_args()
    if not args.default_gc:
        tune_garbage_collector()

    core = build(args.operators, args.groups)
    run(core, 2000, args.groups, seed=1)  # warm-up
    core = build(args.operators, args.groups)
    gc.collect()
    decisions, spent, latencies, wakeup = run(core, args.calls, args.groups, seed=2)
    latencies.sort()
    p50 = statistics.median(latencies) * 1e6
    p99 = latencies[int(len(latencies) * 0.99)] * 1e6

    tracemalloc.start()
    core = build(args.operators, args.groups)
    run(core, min(args.calls, 20_000), args.groups, seed=3)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    collector = "CPython defaults" if args.default_gc else "as in voicemgmt serve"
    print(
        f"routing core: {args.operators} operators in {args.groups} groups, {args.calls} calls "
        f"(garbage collector: {collector})"
    )
    print(f"  routing decisions (offers)   {decisions}")
    print(f"  time in the core             {spent:.2f} s")
    print(f"  decisions/s                  {decisions / spent:,.0f}   (goal >= 100,000)")
    print(f"  core inputs/s                {len(latencies) / spent:,.0f}")
    print(f"  per input p50 / p99          {p50:.1f} / {p99:.1f} µs")
    print(f"  next_wakeup, not counted above {wakeup / args.calls * 1e6:.1f} µs per call")
    print(f"  peak traced memory (20k calls) {peak / 2**20:.1f} MiB")

    short = max(args.calls // 4, 1)
    print(f"  shorter passes of {short} calls, decisions/s:")
    variants: list[tuple[str, list[Strategy], float | None]] = [
        *((f"all groups {s.value}", [s], None) for s in STRATEGIES),
        ("tier_delay 2 s on half the groups", STRATEGIES, 2.0),
    ]
    for label, strategies, tier_delay in variants:
        core = build(args.operators, args.groups, strategies, tier_delay)
        gc.collect()
        result = run(core, short, args.groups, seed=4)
        print(f"    {label:<34} {result.decisions / result.spent:,.0f}")


if __name__ == "__main__":
    main()
