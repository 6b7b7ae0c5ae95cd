"""Gauges read from live state when ``/metrics`` is scraped, instead of kept twice.

``RoutingCollector`` reads the routing cores this process runs (waiting calls and the longest
wait per group, operators by status, calls in progress by state); ``MediaCollector`` the media
backend's RTP packet counts. They run in the event loop's thread (the scrape handler calls them
directly), where no routing step is half done, so they read a consistent state without locks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from voicemgmt.domain.routing.core import RoutingCore
from voicemgmt.domain.routing.model import CallState, Presence

_WAITING = (CallState.QUEUED, CallState.RINGING)


class LiveCores(Protocol):
    def live_cores(self) -> tuple[float, list[tuple[int, RoutingCore]]]:
        """The time now (epoch seconds) and each account's routing core in this process."""
        ...


class RoutingCollector(Collector):
    def __init__(self, routing: LiveCores) -> None:
        self._routing = routing

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        waiting, longest, operators, calls = families = self._families()
        now, cores = self._routing.live_cores()
        for account_id, core in cores:
            account = str(account_id)
            per_group: dict[int, list[float]] = {group_id: [] for group_id in core.groups}
            states: Counter[str] = Counter()
            for call in core.calls.values():
                states[call.state.value] += 1
                waiting_since = call.queued_at if call.state in _WAITING else None
                if waiting_since is not None and call.group_id is not None:
                    per_group.setdefault(call.group_id, []).append(now - waiting_since)
            for group_id, waits in sorted(per_group.items()):
                group = str(group_id)
                waiting.add_metric([account, group], len(waits))
                longest.add_metric([account, group], max(waits) if waits else 0.0)
            statuses = Counter(o.shown_status.value for o in core.operators.values())
            for status in Presence:
                operators.add_metric([account, status.value], statuses.get(status.value, 0))
            for state in CallState:
                if state is not CallState.ENDED:
                    calls.add_metric([account, state.value], states.get(state.value, 0))
        return iter(families)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "voicemgmt_calls_waiting",
                "Calls waiting in a group's queue (queued or ringing an operator).",
                labels=["account", "group"],
            ),
            GaugeMetricFamily(
                "voicemgmt_longest_wait_seconds",
                "How long the longest-waiting call of a group has waited (0: none waiting).",
                labels=["account", "group"],
            ),
            GaugeMetricFamily(
                "voicemgmt_operators",
                "Operators by the status their banner shows (busy while in a call).",
                labels=["account", "status"],
            ),
            GaugeMetricFamily(
                "voicemgmt_calls_active",
                "Calls in progress, by state.",
                labels=["account", "state"],
            ),
        )


class PacketCounts(Protocol):
    def packet_counts(self) -> tuple[int, int | None, int | None]:
        """RTP packets received, sent and lost (None: not known) so far."""
        ...


class MediaCollector(Collector):
    """``voicemgmt_rtp_packets_total`` and ``voicemgmt_rtp_packets_lost_total`` of a media
    backend, as far as it knows them."""

    def __init__(self, backend: str, media: PacketCounts) -> None:
        self._backend = backend
        self._media = media

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        packets, lost = families = self._families()
        received, sent, missing = self._media.packet_counts()
        packets.add_metric([self._backend, "received"], received)
        if sent is not None:
            packets.add_metric([self._backend, "sent"], sent)
        if missing is not None:
            lost.add_metric([self._backend], missing)
        return iter(families)

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily]:
        return (
            CounterMetricFamily(
                "voicemgmt_rtp_packets",
                "RTP packets received from and sent to peers, per media backend.",
                labels=["backend", "direction"],
            ),
            CounterMetricFamily(
                "voicemgmt_rtp_packets_lost",
                "RTP packets peers sent that never arrived (gaps in their sequence numbers).",
                labels=["backend"],
            ),
        )


class CallbackCounter(Collector):
    """A counter whose value another object keeps (e.g. the SIP transport's malformed count)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], int]) -> None:
        self._name, self._documentation, self._read = name, documentation, read

    def describe(self) -> Iterator[Metric]:
        return iter([CounterMetricFamily(self._name, self._documentation)])

    def collect(self) -> Iterator[Metric]:
        return iter([CounterMetricFamily(self._name, self._documentation, value=self._read())])


class LabelledCallbackCounter(Collector):
    """A counter with one label whose values another object keeps (``{label value: count}``)."""

    def __init__(
        self, name: str, documentation: str, label: str, read: Callable[[], Mapping[str, int]]
    ) -> None:
        self._name, self._documentation, self._label, self._read = name, documentation, label, read

    def describe(self) -> Iterator[Metric]:
        return iter([CounterMetricFamily(self._name, self._documentation, labels=[self._label])])

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=[self._label])
        for value, count in sorted(self._read().items()):
            family.add_metric([value], count)
        return iter([family])
