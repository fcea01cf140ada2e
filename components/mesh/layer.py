"""The mesh layer in the composition root."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from components.contract import LayerContext
from components.mesh.istio import Mesh, MeshArgs, MeshHandle
from rampart.config.models import Mesh as MeshConfig


def build(
    ctx: LayerContext, config: MeshConfig, *, extension_providers: Sequence[Mapping[str, Any]] = ()
) -> MeshHandle:
    return Mesh(
        "mesh",
        MeshArgs(
            config=config,
            extension_providers=extension_providers,
            **ctx.in_cluster(),
        ),
        opts=ctx.opts,
    ).handle
