"""Prometheus metrics: request and commit instruments, and a scrape-time view of the runtime."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    disable_created_metrics,
)
from prometheus_client import generate_latest as _generate
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from switchgear.runtime import Runtime
from switchgear.streams import EXTENSION, StreamGate

# the classic text format (metric names here need no escaping): every Prometheus reads it
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# no `_created` twin of every series: scrapes stay short
disable_created_metrics()  # type: ignore[no-untyped-call]


class Tally(Collector):
    """A histogram kept as plain counts on the event loop: an observation is a bisect and
    two additions (prometheus_client's Histogram takes a lock per bucket it passes, several
    µs a request on the hot paths); the cumulative buckets are summed at scrape time."""

    def __init__(
        self, name: str, documentation: str, labels: tuple[str, ...], buckets: tuple[float, ...]
    ) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.bounds = buckets
        self.series: dict[tuple[str, ...], list[float]] = {}  # counts by bucket, +Inf, sum

    def observe(self, key: tuple[str, ...], value: float) -> None:
        counts = self.series.get(key)
        if counts is None:
            counts = self.series[key] = [0.0] * (len(self.bounds) + 2)
        counts[bisect_left(self.bounds, value)] += 1
        counts[-1] += value

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        edges = [floatToGoString(b) for b in self.bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        for key, counts in sorted(self.series.items()):
            cumulative = list(accumulate(counts[:-1]))
            family.add_metric(
                list(key), list(zip(edges, cumulative, strict=True)), sum_value=counts[-1]
            )
        yield family


LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
REQUESTS = Tally(
    "switchgear_http_request_duration_seconds",
    "HTTP requests by face, route template, method and status, and how long each took",
    ("face", "route", "method", "status"),
    LATENCY_BUCKETS,
)
COMMIT_SIZE = Tally(
    "switchgear_group_commit_records",
    "Records (statuses, NVRAM blobs, commands) written per group commit",
    (),
    (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
)
COMMIT_SECONDS = Tally(
    "switchgear_group_commit_seconds",
    "How long one group commit took to become durable",
    (),
    LATENCY_BUCKETS,
)
for _tally in (REQUESTS, COMMIT_SIZE, COMMIT_SECONDS):
    REGISTRY.register(_tally)


def observe_commit(size: int, seconds: float) -> None:
    """The journal's commit hook."""
    COMMIT_SIZE.observe((), size)
    COMMIT_SECONDS.observe((), seconds)


class RuntimeCollector(Collector):
    """Counts read off the runtime at scrape time, so the hot paths pay nothing for them."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        engine = self.rt.engine
        commands = CounterMetricFamily(
            "switchgear_commands", "Finished commands by outcome", labels=["outcome"]
        )
        for outcome in ("done", "failed", "timed_out"):
            commands.add_metric([outcome], engine.outcomes.get(outcome, 0))
        yield commands
        devices = GaugeMetricFamily(
            "switchgear_devices",
            "Registered devices by family and state",
            labels=["family", "state"],
        )
        counts = engine.device_counts()  # kept by the engine: no walk over the fleet
        for (family, online), n in sorted(counts.items()):
            devices.add_metric([family, "online" if online else "offline"], n)
        yield devices
        found = self.rt.extensions.get(EXTENSION)
        streams = found.open if isinstance(found, StreamGate) else 0
        yield GaugeMetricFamily(
            "switchgear_open_streams",
            "Open event streams (native SSE, Push3 channels)",
            value=streams,
        )


def render(rt: Runtime) -> bytes:
    """The exposition text: process-wide instruments, then this runtime's counts."""
    local = CollectorRegistry(auto_describe=False)
    local.register(RuntimeCollector(rt))
    return _generate(REGISTRY) + _generate(local)
