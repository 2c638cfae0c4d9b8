"""The node's operations surface: Prometheus metrics, injected-fault state and the HTTP port
that serves both (``/metrics``, ``/healthz``, ``/readyz``, ``/status``, ``/admin/faults``)."""

from aitbc_node.ops.faults import (
    FAULT_KINDS,
    ActiveFault,
    FaultController,
    FaultLimitError,
    FaultNotFoundError,
    FaultSpec,
    FaultSpecError,
    parse_fault_spec,
)
from aitbc_node.ops.http import MAX_BODY_BYTES, OpsServer, build_ops_app, start_ops_server
from aitbc_node.ops.metrics import (
    ALL_REJECT_REASONS,
    DESIGN_METRIC_NAMES,
    LATENCY_BUCKETS,
    NODE_REJECT_REASONS,
    NodeMetrics,
)

__all__ = [
    "ALL_REJECT_REASONS",
    "DESIGN_METRIC_NAMES",
    "FAULT_KINDS",
    "LATENCY_BUCKETS",
    "MAX_BODY_BYTES",
    "NODE_REJECT_REASONS",
    "ActiveFault",
    "FaultController",
    "FaultLimitError",
    "FaultNotFoundError",
    "FaultSpec",
    "FaultSpecError",
    "NodeMetrics",
    "OpsServer",
    "build_ops_app",
    "parse_fault_spec",
    "start_ops_server",
]
