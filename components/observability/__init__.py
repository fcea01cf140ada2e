"""The observability layer: kube-prometheus-stack, Grafana, Loki and Alloy, Tempo.

The names below are this layer's public contract: other layers, the config checks and the
policy defaults derive from them instead of spelling them again.
"""

from __future__ import annotations

# Every monitoring component: Prometheus, Alertmanager, Grafana, Loki, Alloy, Tempo.
NAMESPACE = "monitoring"
