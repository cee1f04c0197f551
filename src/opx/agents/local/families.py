"""What a metric measures, from its name: errors, availability, latency, saturation or traffic."""

from __future__ import annotations

# Checked in order; the first family whose word appears in the metric name wins.
_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ERRORS", ("error", "fault", "5xx", "4xx", "exception", "fail", "timeout")),
    ("AVAILABILITY", ("availability", "success", "healthy", "uptime")),
    ("LATENCY", ("latency", "duration", "responsetime", "response_time", "elapsed", "delay")),
    (
        "SATURATION",
        (
            "cpu",
            "memory",
            "mem",
            "throttl",
            "queue",
            "saturation",
            "disk",
            "connection",
            "thread",
            "utiliz",
            "gc",
            "network",
            "iops",
        ),
    ),
    (
        "TRAFFIC",
        (
            "request",
            "invocation",
            "throughput",
            "rps",
            "calls",
            "hits",
            "traffic",
            "workload",
            "count",
        ),
    ),
)


def metric_family(metric: str) -> str:
    """The category a metric name belongs to (ERRORS, LATENCY, …), or UNKNOWN."""
    name = metric.lower()
    for family, words in _FAMILIES:
        if any(word in name for word in words):
            return family
    return "UNKNOWN"


# Words naming a measure taken on the calling side of requests (time waiting for callees).
_CLIENT_WORDS = ("client", "outbound")


def is_client_side(metric: str) -> bool:
    """True for a latency or error measure taken on the client side of the service's own calls
    (its outbound requests): it moves with its callees, so it shows the service is affected, never
    that the fault is its own."""
    name = metric.lower()
    return metric_family(metric) in ("LATENCY", "ERRORS") and any(w in name for w in _CLIENT_WORDS)
