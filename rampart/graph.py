"""`rampart graph`: services, calls, public routes, databases and queues as a picture.

Drawn from the same validated PlatformConfig the mesh policies are generated from, so the picture
shows exactly who may call whom. Mermaid for docs; a self-contained SVG laid out here (no graphviz,
no network) for everything else. Same config, same bytes.
"""

from __future__ import annotations

import html
import itertools
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Literal

from rampart.config import Database, PlatformConfig, Route, ServiceSpec

NodeKind = Literal["gateway", "service", "database", "queue"]
EdgeKind = Literal["route", "call", "database", "publish", "consume"]
GATEWAY = "gateway"
FORMATS = {".mmd": "mermaid", ".md": "markdown", ".svg": "svg"}


@dataclass(frozen=True)
class Node:
    id: str
    kind: NodeKind
    lines: tuple[str, ...]
    # The colour class: the kind, or 'public' / 'open' for services with routes.
    style: str


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind
    label: tuple[str, ...] = ()


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


# Ids are prefixed by kind: a queue may share a service's name, and Mermaid reserves words like `end`.
def service_id(name: str) -> str:
    return "svc_" + name.replace("-", "_")


def database_id(service: str) -> str:
    return "db_" + service.replace("-", "_")


def queue_id(name: str) -> str:
    return "q_" + name.replace("-", "_")


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def route_label(route: Route) -> str:
    return f"{route.host}{route.path} ({'auth' if route.auth else 'open'})"


def _database_label(database: Database) -> str:
    return f"{database.engine} {database.storage_gb} GB"


def _service_node(service: ServiceSpec) -> Node:
    style = "service"
    if service.routes:
        style = "public" if all(r.auth for r in service.routes) else "open"
    return Node(service_id(service.name), "service", (service.name,), style)


def build_graph(config: PlatformConfig) -> Graph:
    """Nodes: gateway (when anything is public), services, databases, queues; edges grouped by kind."""
    services = config.services
    known = {s.name for s in services}
    nodes = [_service_node(s) for s in services]
    if any(s.routes for s in services):
        nodes.insert(0, Node(GATEWAY, "gateway", ("internet", "API gateway"), "gateway"))
    queues = _unique(q for s in services for q in (*s.queue.publishes, *s.queue.consumes))
    nodes += [
        Node(database_id(s.name), "database", (f"{s.name}-db", _database_label(s.database)), "database")
        for s in services
        if s.database is not None
    ]
    nodes += [Node(queue_id(q), "queue", (q,), "queue") for q in queues]
    edges = [
        Edge(GATEWAY, service_id(s.name), "route", tuple(route_label(r) for r in s.routes))
        for s in services
        if s.routes
    ]
    # Loaded configs never call unknown services; hand-built ones might, and get no dangling edge.
    edges += [
        Edge(service_id(s.name), service_id(c), "call")
        for s in services
        for c in _unique(s.calls)
        if c in known
    ]
    edges += [Edge(service_id(s.name), database_id(s.name), "database") for s in services if s.database]
    edges += [
        Edge(service_id(s.name), queue_id(q), "publish") for s in services for q in _unique(s.queue.publishes)
    ]
    edges += [
        Edge(queue_id(q), service_id(s.name), "consume") for s in services for q in _unique(s.queue.consumes)
    ]
    return Graph(tuple(nodes), tuple(edges))


# ---------------------------------------------------------------------------------------------- styles

# style -> (fill, stroke)
STYLES: dict[str, tuple[str, str]] = {
    "gateway": ("#eef2ff", "#4338ca"),
    "service": ("#f9fafb", "#374151"),
    "public": ("#dbeafe", "#1d4ed8"),
    "open": ("#fef3c7", "#b45309"),
    "database": ("#ecfdf5", "#047857"),
    "queue": ("#fff7ed", "#c2410c"),
}


# What each style means, in the order the legend shows them.
LEGEND_STYLES: dict[str, str] = {
    "gateway": "API gateway",
    "service": "service",
    "public": "public: every route needs a JWT",
    "open": "public: a route without JWT",
    "database": "database",
    "queue": "queue",
}
_STYLE_KINDS: dict[str, NodeKind] = {
    "gateway": "gateway",
    "service": "service",
    "public": "service",
    "open": "service",
    "database": "database",
    "queue": "queue",
}
LEGEND_EDGES: dict[EdgeKind, str] = {
    "route": "routes to",
    "call": "may call",
    "database": "owns",
    "publish": "publishes / consumes",
}


def _legend_styles(graph: Graph) -> list[tuple[str, str]]:
    """The styles the graph draws (services always), with their meaning."""
    drawn = {node.style for node in graph.nodes} | {"service"}
    return [(style, text) for style, text in LEGEND_STYLES.items() if style in drawn]


def _legend_edges(graph: Graph) -> list[tuple[EdgeKind, str]]:
    drawn = {"publish" if edge.kind == "consume" else edge.kind for edge in graph.edges}
    return [(kind, text) for kind, text in LEGEND_EDGES.items() if kind in drawn]


def _stroke_width(style: str) -> int:
    return 2 if style in ("public", "open") else 1


EDGE_COLOURS: dict[EdgeKind, str] = {
    "route": "#1d4ed8",
    "call": "#374151",
    "database": "#047857",
    "publish": "#c2410c",
    "consume": "#c2410c",
}

# --------------------------------------------------------------------------------------------- mermaid

_MERMAID_SHAPES: dict[NodeKind, tuple[str, str]] = {
    "gateway": ("((", "))"),
    "service": ("(", ")"),
    "database": ("[(", ")]"),
    "queue": ("[[", "]]"),
}
_MERMAID_SAFE = frozenset(string.ascii_letters + string.digits + " ./_:()-")


def _mermaid_text(lines: Iterable[str]) -> str:
    # Anything outside a small safe set becomes an entity code, so no label can end a statement.
    encoded = ("".join(c if c in _MERMAID_SAFE else f"#{ord(c)};" for c in line) for line in lines)
    return '"' + "<br/>".join(encoded) + '"'


def _mermaid_edge(edge: Edge) -> str:
    if edge.kind in ("publish", "consume"):
        return f"  {edge.source} -.->|{edge.kind}| {edge.target}"
    label = f"|{_mermaid_text(edge.label)}|" if edge.label else ""
    return f"  {edge.source} -->{label} {edge.target}"


def _mermaid_classes(graph: Graph) -> list[str]:
    lines = [
        f"  classDef {name} fill:{fill},stroke:{stroke},stroke-width:{_stroke_width(name)}px"
        for name, (fill, stroke) in STYLES.items()
    ]
    for name in STYLES:
        members = [n.id for n in graph.nodes if n.style == name]
        if members:
            lines.append(f"  class {','.join(members)} {name}")
    return lines


def mermaid(config: PlatformConfig) -> str:
    """A Mermaid flowchart (left to right) of the platform."""
    graph = build_graph(config)
    lines = ["flowchart LR", f"  %% rampart graph: environment {config.environment}"]
    for node in graph.nodes:
        opening, closing = _MERMAID_SHAPES[node.kind]
        lines.append(f"  {node.id}{opening}{_mermaid_text(node.lines)}{closing}")
    lines += [_mermaid_edge(e) for e in graph.edges]
    lines += _mermaid_classes(graph)
    lines += _mermaid_legend(graph)
    return "\n".join(lines) + "\n"


def _mermaid_legend(graph: Graph) -> list[str]:
    """A legend subgraph: one sample per node style drawn, and what the arrows mean."""
    lines = ["  subgraph legend [Legend]", "    direction LR"]
    for style, text in _legend_styles(graph):
        opening, closing = _MERMAID_SHAPES[_STYLE_KINDS[style]]
        lines.append(f"    legend_{style}{opening}{_mermaid_text([text])}{closing}:::{style}")
    arrows = "solid arrow: a public route or an allowed call. dashed: publish / consume"
    lines += [f"    legend_arrows[{_mermaid_text([arrows])}]", "  end"]
    return lines


# ---------------------------------------------------------------------------------------------- layout

FONT_SIZE = 12
CHAR_WIDTH = 7.5  # a monospace glyph at 12px is ~0.6em: text widths can be estimated without a font
LINE_HEIGHT = 15
NODE_HEIGHT = 44
# Edges spanning several columns pass through a thin slot in each column between, so they never
# cut through a box (the classic layered-drawing "dummy node").
PASS_HEIGHT = 8
MIN_NODE_WIDTH = 120
TEXT_PADDING = 14
GAP_X = 80
GAP_Y = 34
MARGIN = 24
LOOP = 48  # how far edges that cannot run left to right swing out to the right
SWEEPS = 4

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass(frozen=True)
class Curve:
    edge: Edge
    points: tuple[Point, ...]  # every point the path names, for the extent
    d: str
    label_at: Point  # the route label ends just left of this point


@dataclass(frozen=True)
class Layout:
    boxes: dict[str, Box]  # nodes and pass-through slots
    chains: dict[int, list[str]]  # edge index -> source, slots passed through, target (left to right only)


def _text_width(text: str) -> float:
    return len(text) * CHAR_WIDTH


def _depth_first(ids: list[str], successors: dict[str, list[str]]) -> tuple[list[str], set[tuple[str, str]]]:
    """Reverse post-order and the back edges (those closing a cycle), iteratively for deep graphs."""
    state: dict[str, int] = {}  # 1: on the stack, 2: finished
    finished: list[str] = []
    back: set[tuple[str, str]] = set()
    for root in ids:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(successors[root]))]
        while stack:
            node, pending = stack[-1]
            target = next(pending, None)
            if target is None:
                state[node] = 2
                finished.append(node)
                stack.pop()
            elif state.get(target) == 1:
                back.add((node, target))
            elif target not in state:
                state[target] = 1
                stack.append((target, iter(successors[target])))
    return finished[::-1], back


def _layers(graph: Graph) -> dict[str, int]:
    """Longest-path layering of gateway -> services -> queues -> consumers; cycles are cut at back edges,
    and each database sits one column right of its owner."""
    ids = [n.id for n in graph.nodes]
    flow = [e for e in graph.edges if e.kind != "database"]
    successors: dict[str, list[str]] = {i: [] for i in ids}
    for edge in flow:
        successors[edge.source].append(edge.target)
    order, back = _depth_first(ids, successors)
    # Everything but the gateway starts in the public services' column.
    base = 1 if GATEWAY in successors else 0
    layer = {i: 0 if i == GATEWAY else base for i in ids}
    for node in order:
        for target in successors[node]:
            if (node, target) not in back:
                layer[target] = max(layer[target], layer[node] + 1)
    for edge in graph.edges:
        if edge.kind == "database":
            layer[edge.target] = layer[edge.source] + 1
    return layer


def _chains(graph: Graph, layer: dict[str, int]) -> dict[int, list[str]]:
    """Left-to-right edges with a pass-through slot (laid out in `layer`) for each column they cross."""
    chains: dict[int, list[str]] = {}
    for i, edge in enumerate(graph.edges):
        start, end = layer[edge.source], layer[edge.target]
        if end > start:
            passes = [f"~{i}.{c}" for c in range(start + 1, end)]
            layer.update({slot: start + 1 + k for k, slot in enumerate(passes)})
            chains[i] = [edge.source, *passes, edge.target]
    return chains


def _neighbours(slots: list[str], graph: Graph, chains: dict[int, list[str]]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {s: [] for s in slots}
    links = [(e.source, e.target) for i, e in enumerate(graph.edges) if i not in chains]
    links += [pair for chain in chains.values() for pair in itertools.pairwise(chain)]
    for a, b in links:
        if a != b:
            result[a].append(b)
            result[b].append(a)
    return result


def _centred_positions(columns: list[list[str]]) -> dict[str, float]:
    return {v: row - (len(column) - 1) / 2 for column in columns for row, v in enumerate(column)}


def _sweep(
    columns: list[list[str]],
    indices: Iterable[int],
    neighbours: dict[str, list[str]],
    layer: dict[str, int],
    beside: Callable[[int, int], bool],
) -> None:
    """Reorder each column by the mean position of its neighbours in the columns already placed."""
    for c in indices:
        position = _centred_positions(columns)

        def key(v: str, c: int = c, position: dict[str, float] = position) -> tuple[float, float]:
            placed = [position[u] for u in neighbours[v] if beside(layer[u], c)]
            return (sum(placed) / len(placed) if placed else position[v], position[v])

        columns[c] = sorted(columns[c], key=key)


def _columns(graph: Graph, layer: dict[str, int], chains: dict[int, list[str]]) -> list[list[str]]:
    slots = [n.id for n in graph.nodes] + [s for chain in chains.values() for s in chain[1:-1]]
    count = max(layer.values()) + 1
    columns = [[s for s in slots if layer[s] == c] for c in range(count)]
    neighbours = _neighbours(slots, graph, chains)
    for _ in range(SWEEPS):
        _sweep(columns, range(1, count), neighbours, layer, lambda other, c: other < c)
        _sweep(columns, range(count - 2, -1, -1), neighbours, layer, lambda other, c: other > c)
    return columns


def _node_width(graph: Graph) -> float:
    widest = max(_text_width(line) for n in graph.nodes for line in n.lines)
    return max(MIN_NODE_WIDTH, widest + 2 * TEXT_PADDING)


def _gaps(graph: Graph, count: int) -> list[float]:
    """The gap before each column; route labels sit in the one after the gateway's column."""
    widest = max((_text_width(line) for e in graph.edges for line in e.label), default=0)
    return [float(GAP_X) if c != 1 else max(GAP_X, widest + 32) for c in range(count)]


def _column_height(column: list[str]) -> float:
    heights = [PASS_HEIGHT if s.startswith("~") else NODE_HEIGHT for s in column]
    return sum(heights) + GAP_Y * (len(heights) - 1)


def _plan(graph: Graph) -> Layout:
    layer = _layers(graph)
    chains = _chains(graph, layer)
    columns = _columns(graph, layer, chains)
    width, gaps = _node_width(graph), _gaps(graph, len(columns))
    tallest = max(_column_height(c) for c in columns)
    boxes: dict[str, Box] = {}
    x = 0.0
    for c, column in enumerate(columns):
        x += gaps[c] if c else 0
        y = (tallest - _column_height(column)) / 2
        for slot in column:
            height = PASS_HEIGHT if slot.startswith("~") else NODE_HEIGHT
            boxes[slot] = Box(x, y, width, height)
            y += height + GAP_Y
        x += width
    return Layout(boxes, chains)


def _spread(count: int) -> list[float]:
    step = min(8.0, (NODE_HEIGHT - 8) / max(count, 1))
    return [(i - (count - 1) / 2) * step for i in range(count)]


def _ports(graph: Graph, plan: Layout) -> dict[tuple[int, str], float]:
    """Heights where each left-to-right edge leaves (right side) and enters (left side) its boxes, spread
    out and ordered by the neighbouring slot's height so edges sharing a box do not cross at it."""
    boxes, ports = plan.boxes, {}
    for node in graph.nodes:
        outgoing = sorted((boxes[c[1]].cy, i) for i, c in plan.chains.items() if c[0] == node.id)
        incoming = sorted((boxes[c[-2]].cy, i) for i, c in plan.chains.items() if c[-1] == node.id)
        for (_, i), offset in zip(outgoing, _spread(len(outgoing)), strict=True):
            ports[(i, "out")] = boxes[node.id].cy + offset
        for (_, i), offset in zip(incoming, _spread(len(incoming)), strict=True):
            ports[(i, "in")] = boxes[node.id].cy + offset
    return ports


def _runs(
    chain: list[str], i: int, boxes: dict[str, Box], ports: dict[tuple[int, str], float]
) -> list[Point]:
    """Pairs of points (enter, leave) per box along a chain: the edge runs straight through each slot."""
    first, last = boxes[chain[0]], boxes[chain[-1]]
    points = [(first.right, ports[(i, "out")])] * 2
    for slot in chain[1:-1]:
        box = boxes[slot]
        points += [(box.x, box.cy), (box.right, box.cy)]
    return [*points, (last.x, ports[(i, "in")]), (last.x, ports[(i, "in")])]


def _flowing(edge: Edge, runs: list[Point]) -> Curve:
    points: list[Point] = [runs[1]]
    d = f"M{_p(runs[1])}"
    for k in range(2, len(runs), 2):
        (ax, ay), (bx, by), leave = runs[k - 1], runs[k], runs[k + 1]
        bend = max((bx - ax) / 2, 20)
        points += [(ax + bend, ay), (bx - bend, by), (bx, by)]
        d += f" C{_p(points[-3])} {_p(points[-2])} {_p(points[-1])}"
        if leave != runs[k]:
            points.append(leave)
            d += f" L{_p(leave)}"
    return Curve(edge, tuple(points), d, runs[2])


def _looping(edge: Edge, source: Box, target: Box) -> Curve:
    # Back edges (cycles) leave and re-enter on the right, looping outside the columns.
    start, end = (source.right, source.cy - 10), (target.right, target.cy + 10)
    swing = max(start[0], end[0]) + LOOP
    points = (start, (swing, start[1]), (swing, end[1]), end)
    return Curve(edge, points, f"M{_p(start)} C{_p(points[1])} {_p(points[2])} {_p(end)}", end)


def _curves(graph: Graph, plan: Layout) -> list[Curve]:
    ports = _ports(graph, plan)
    return [
        _flowing(edge, _runs(plan.chains[i], i, plan.boxes, ports))
        if i in plan.chains
        else _looping(edge, plan.boxes[edge.source], plan.boxes[edge.target])
        for i, edge in enumerate(graph.edges)
    ]


def _label_lines(curve: Curve) -> list[tuple[str, Point]]:
    """Route labels end just left of the edge's first stop after the gateway, on the side the edge does
    not come from, so the edge never runs through its own label."""
    x, y = curve.label_at
    lines = curve.edge.label
    from_above = curve.points[0][1] < y
    first = y + 4 + FONT_SIZE if from_above else y - 7 - LINE_HEIGHT * (len(lines) - 1)
    return [(line, (x - 10, first + LINE_HEIGHT * k)) for k, line in enumerate(lines)]


def _extent(boxes: Iterable[Box], curves: list[Curve]) -> tuple[float, float, float, float]:
    xs: list[float] = []
    ys: list[float] = []
    for box in boxes:
        xs += [box.x, box.right]
        ys += [box.y, box.y + box.h]
    for curve in curves:
        xs += [p[0] for p in curve.points]
        ys += [p[1] for p in curve.points]
        for line, (x, y) in _label_lines(curve):
            xs += [x - _text_width(line) - 4, x + 4]
            ys += [y - FONT_SIZE - 4, y + 4]
    return min(xs), min(ys), max(xs), max(ys)


def layout(graph: Graph) -> tuple[dict[str, Box], list[Curve], tuple[float, float]]:
    """Node boxes and edge curves, shifted so everything (labels and loops too) lies inside the canvas."""
    plan = _plan(graph)
    left, top, right, bottom = _extent(plan.boxes.values(), _curves(graph, plan))
    dx, dy = MARGIN - left, MARGIN - top
    plan = replace(plan, boxes={k: replace(b, x=b.x + dx, y=b.y + dy) for k, b in plan.boxes.items()})
    nodes = {n.id: plan.boxes[n.id] for n in graph.nodes}
    return nodes, _curves(graph, plan), (right - left + 2 * MARGIN, bottom - top + 2 * MARGIN)


# ------------------------------------------------------------------------------------------------- svg


def _n(value: float) -> str:
    text = f"{round(value, 1):.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _p(point: Point) -> str:
    return f"{_n(point[0])},{_n(point[1])}"


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _texts(lines: tuple[str, ...], x: float, centre: float, css: str) -> list[str]:
    first = centre - LINE_HEIGHT * (len(lines) - 1) / 2 + FONT_SIZE * 0.35
    return [
        f'<text x="{_n(x)}" y="{_n(first + LINE_HEIGHT * k)}" text-anchor="middle"{css}>{_attr(line)}</text>'
        for k, line in enumerate(lines)
    ]


def _decoration(node: Node, box: Box, stroke: str) -> str:
    """The lip of a database cylinder; the side bars of a queue (Mermaid's subroutine shape)."""
    if node.kind == "database":
        lip = f"M{_p((box.x, box.y + 8))} C{_p((box.x, box.y + 16))} {_p((box.right, box.y + 16))} "
        return f'<path d="{lip}{_p((box.right, box.y + 8))}" fill="none" stroke="{stroke}"/>'
    if node.kind == "queue":
        bars = " ".join(f"M{_p((x, box.y))} L{_p((x, box.y + box.h))}" for x in (box.x + 8, box.right - 8))
        return f'<path d="{bars}" fill="none" stroke="{stroke}"/>'
    return ""


def _svg_node(node: Node, box: Box) -> str:
    fill, stroke = STYLES[node.style]
    radius = {"gateway": box.h / 2, "service": 10.0, "database": 8.0, "queue": 2.0}[node.kind]
    css = f"node {node.kind}" + (f" {node.style}" if node.style != node.kind else "")
    return "".join(
        [
            f'<g class="{css}" id="{_attr(node.id)}">',
            f'<rect x="{_n(box.x)}" y="{_n(box.y)}" width="{_n(box.w)}" height="{_n(box.h)}" '
            f'rx="{_n(radius)}" fill="{fill}" stroke="{stroke}" stroke-width="{_stroke_width(node.style)}"/>',
            _decoration(node, box, stroke),
            *_texts(node.lines, box.x + box.w / 2, box.cy, ""),
            "</g>",
        ]
    )


def _svg_edge(curve: Curve) -> str:
    edge = curve.edge
    dashed = ' stroke-dasharray="6 4"' if edge.kind in ("publish", "consume") else ""
    ends = f'data-source="{_attr(edge.source)}" data-target="{_attr(edge.target)}"'
    stroke = f'stroke="{EDGE_COLOURS[edge.kind]}" stroke-width="1.5"{dashed}'
    return (
        f'<g class="edge {edge.kind}" {ends}><path d="{curve.d}" fill="none" {stroke} '
        f'marker-end="url(#arrow-{edge.kind})"/></g>'
    )


def _svg_labels(curve: Curve) -> list[str]:
    # A white halo (stroke painted under the fill) keeps labels readable over crossing edges.
    halo = ' stroke="#ffffff" stroke-width="4" paint-order="stroke"'
    colour = EDGE_COLOURS[curve.edge.kind]
    return [
        f'<text class="label" x="{_n(x)}" y="{_n(y)}" text-anchor="end" fill="{colour}"{halo}>'
        f"{_attr(line)}</text>"
        for line, (x, y) in _label_lines(curve)
    ]


def _markers() -> list[str]:
    return [
        f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        for kind, colour in EDGE_COLOURS.items()
    ]


LEGEND_ROW = 24
LEGEND_SWATCH = 26
LEGEND_GAP = 8


def _style_swatch(style: str, x: float, y: float) -> str:
    fill, stroke = STYLES[style]
    return (
        f'<rect x="{_n(x)}" y="{_n(y - 7)}" width="{LEGEND_SWATCH}" height="14" rx="3" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{_stroke_width(style)}"/>'
    )


def _edge_swatch(kind: EdgeKind, x: float, y: float) -> str:
    dashed = ' stroke-dasharray="6 4"' if kind == "publish" else ""
    return (
        f'<path d="M{_p((x, y))} L{_p((x + LEGEND_SWATCH, y))}" fill="none" '
        f'stroke="{EDGE_COLOURS[kind]}" stroke-width="1.5"{dashed} marker-end="url(#arrow-{kind})"/>'
    )


def _legend_row(
    swatches: Sequence[tuple[Callable[[float, float], str], str]], y: float
) -> tuple[list[str], float]:
    """Swatches (a node style's box, or an edge kind's arrow) and their meaning, left to right; the
    row's markup and the width it needs."""
    parts: list[str] = []
    x = float(MARGIN)
    for swatch, text in swatches:
        parts.append(swatch(x, y))
        x += LEGEND_SWATCH + LEGEND_GAP
        parts.append(f'<text x="{_n(x)}" y="{_n(y + FONT_SIZE * 0.35)}">{_attr(text)}</text>')
        x += _text_width(text) + 3 * LEGEND_GAP
    return parts, x - 3 * LEGEND_GAP + MARGIN


def _svg_legend(graph: Graph, top: float) -> tuple[str, float, float]:
    """The legend below the graph: its markup, its width and its height."""
    styles = [(partial(_style_swatch, style), text) for style, text in _legend_styles(graph)]
    kinds = [(partial(_edge_swatch, kind), text) for kind, text in _legend_edges(graph)]
    nodes, nodes_width = _legend_row(styles, top + LEGEND_ROW / 2)
    edges, edges_width = _legend_row(kinds, top + LEGEND_ROW * 1.5)
    markup = "".join(['<g class="legend">', *nodes, *edges, "</g>"])
    return markup, max(nodes_width, edges_width), 2 * LEGEND_ROW + MARGIN / 2


def svg(config: PlatformConfig) -> str:
    """A self-contained SVG of the platform, laid out left to right, with a legend below it."""
    graph = build_graph(config)
    boxes, curves, (width, height) = layout(graph)
    legend, legend_width, legend_height = _svg_legend(graph, height - MARGIN / 2)
    width, height = max(width, legend_width), height + legend_height
    size = f'width="{_n(width)}" height="{_n(height)}"'
    return (
        "\n".join(
            [
                f'<svg xmlns="http://www.w3.org/2000/svg" {size} viewBox="0 0 {_n(width)} {_n(height)}" '
                f'font-family="ui-monospace, Menlo, Consolas, monospace" font-size="{FONT_SIZE}">',
                f"<title>{_attr(f'Rampart platform: {config.environment}')}</title>",
                "<defs>",
                *_markers(),
                "</defs>",
                f'<rect class="background" x="0" y="0" {size} fill="#ffffff"/>',
                '<g class="edges">',
                *(_svg_edge(c) for c in curves),
                "</g>",
                '<g class="nodes">',
                *(_svg_node(n, boxes[n.id]) for n in graph.nodes),
                "</g>",
                '<g class="labels">',
                *(line for c in curves for line in _svg_labels(c)),
                "</g>",
                legend,
                "</svg>",
            ]
        )
        + "\n"
    )


# ---------------------------------------------------------------------------------------------- render


def render(config: PlatformConfig, path: Path) -> str:
    """Write the graph in the format the file's suffix names; return that format's name."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"cannot draw {path.name!r}: the file must end in {', '.join(FORMATS)}")
    if kind == "svg":
        text = svg(config)
    elif kind == "markdown":
        text = f"```mermaid\n{mermaid(config)}```\n"
    else:
        text = mermaid(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
    return kind
