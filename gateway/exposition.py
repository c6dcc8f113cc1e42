"""What ``/metrics`` shows: the recorded metrics, and a zero for each declared one not yet seen."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

# How the OpenTelemetry Prometheus exporter spells a unit in a metric's name.
_UNIT_SUFFIXES = {"ms": "_milliseconds", "1": "", "": ""}


@dataclass(frozen=True, slots=True)
class Family:
    """One metric as ``/metrics`` names it (a counter's name ends in ``_total``)."""

    name: str
    kind: str  # "counter", "gauge" or "histogram"
    help: str


def family(name: str, kind: str, description: str, unit: str = "") -> Family:
    """The family the Prometheus exporter makes of the OpenTelemetry instrument ``name``."""
    exposed = name.replace(".", "_") + _UNIT_SUFFIXES[unit]
    return Family(exposed + ("_total" if kind == "counter" else ""), kind, description)


class Exposition:
    """The registry's metrics, and a zero series for each declared metric without one yet.

    OpenTelemetry exports a metric only from its first value, so an alert or a dashboard on,
    say, ``connector_dlq_size`` found nothing on a new process. Until a metric has a series,
    it is shown as one series without labels at zero; its first value replaces that.
    """

    def __init__(self, registry: CollectorRegistry, declared: Iterable[Family]) -> None:
        self._registry = registry
        self.declared = tuple(declared)

    def collect(self) -> Iterable[Metric]:
        shown: set[str] = set()
        for metric in self._registry.collect():
            if metric.samples:
                shown.add(_exposed_name(metric))
                yield metric
        for declared in self.declared:
            if declared.name not in shown:
                yield _zero(declared)


def _exposed_name(metric: Metric) -> str:
    # prometheus_client keeps a counter's name without the suffix it writes out.
    return f"{metric.name}_total" if metric.type == "counter" else metric.name


def _zero(declared: Family) -> Metric:
    if declared.kind == "counter":
        return CounterMetricFamily(declared.name.removesuffix("_total"), declared.help, value=0)
    if declared.kind == "gauge":
        return GaugeMetricFamily(declared.name, declared.help, value=0)
    return HistogramMetricFamily(declared.name, declared.help, buckets=[("+Inf", 0)], sum_value=0)
