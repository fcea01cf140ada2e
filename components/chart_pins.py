"""Every chart a stack installs, from the layers' own pins: what a chart mirror (`rampart:charts.mirror`)
must hold. Read by the config check before any resource is registered; tests/test_chart_mirror.py keeps
it equal to the charts of each stack's plan."""

from __future__ import annotations

from components.certificates import cert_manager
from components.core.charts import Chart
from components.data.postgres import CHART as CLOUDNATIVE_PG_CHART
from components.gateway import kong
from components.mesh import istio
from components.observability import prometheus_stack
from components.observability.logging_charts import ALLOY_CHART, LOKI_CHART, TEMPO_CHART
from components.secrets.vault_chart import OPERATOR_CHART, VAULT_CHART
from components.targets.aws import karpenter, lb_controller
from rampart.config.models import PlatformConfig

# On every target.
EVERYWHERE: tuple[Chart, ...] = (
    Chart(cert_manager.CHART_REPOSITORY, cert_manager.CHART, cert_manager.CHART_VERSION),
    *(Chart(istio.CHART_REPOSITORY, name, istio.ISTIO_VERSION) for name in istio.CHARTS.values()),
    VAULT_CHART,
    OPERATOR_CHART,
    Chart(kong.CHART_REPOSITORY, kong.CHART, kong.CHART_VERSION),
    Chart(prometheus_stack.CHART_REPOSITORY, prometheus_stack.CHART, prometheus_stack.CHART_VERSION),
    LOKI_CHART,
    TEMPO_CHART,
    ALLOY_CHART,
)
# The aws target's controllers.
AWS: tuple[Chart, ...] = (karpenter.CHART, lb_controller.CHART)


def installed_charts(config: PlatformConfig) -> list[Chart]:
    """The charts ``config``'s stack installs, sorted by name."""
    found = list(EVERYWHERE)
    if config.target == "aws":
        found += AWS
    elif any(service.database for service in config.services):
        # In-cluster databases: the CloudNativePG operator (components/data/layer.py).
        found.append(CLOUDNATIVE_PG_CHART)
    return sorted(found, key=lambda chart: (chart.short_name, chart.version))
