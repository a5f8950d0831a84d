"""Prometheus metrics of the execution service and the kernel pool.

Each server keeps its own registry (several servers may live in one process,
as in the tests), exposed at ``GET api/coderemote/metrics``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
START_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)


class Metrics:
    """The metrics one server reports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.executions = Counter("coderemote_executions", "Executions by outcome.", ["status"], registry=r)
        self.execution_duration = Histogram(
            "coderemote_execution_duration_seconds", "Wall time of executions.", buckets=DURATION_BUCKETS, registry=r
        )
        self.sandbox_start = Histogram(
            "coderemote_sandbox_start_seconds",
            "Time from starting a sandbox to its kernel_info reply.",
            buckets=START_BUCKETS,
            registry=r,
        )
        self.pool_hits = Counter("coderemote_pool_hits", "Sandboxes taken warm from the pool.", registry=r)
        self.pool_misses = Counter("coderemote_pool_misses", "Sandboxes started on demand (pool empty).", registry=r)
        self.rejected = Counter(
            "coderemote_rejected_requests", "Requests refused for lack of capacity.", ["reason"], registry=r
        )
        self.pool_idle = Gauge("coderemote_pool_idle", "Started, never-used kernels waiting in the pool.", registry=r)
        self.kernels = Gauge("coderemote_kernels", "Sandboxed kernels by state.", ["state"], registry=r)

    def observe_pool(self, pool: Any) -> None:
        """Read the pool's and sessions' sizes at scrape time."""
        self.pool_idle.set_function(lambda: pool.idle)
        self.kernels.labels(state="idle").set_function(lambda: pool.idle)
        self.kernels.labels(state="starting").set_function(lambda: pool.starting)
        self.kernels.labels(state="held").set_function(lambda: pool.held)

    def observe_sessions(self, count: Any) -> None:
        self.kernels.labels(state="session").set_function(count)
