"""`rampart graph`: the Mermaid and SVG pictures say exactly what the config says, and nothing else."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rampart.config import PlatformConfig
from rampart.graph import (
    LEGEND_EDGES,
    LEGEND_STYLES,
    STYLES,
    build_graph,
    database_id,
    mermaid,
    queue_id,
    render,
    service_id,
    svg,
)
from tests.conftest import stack_config
from tests.support.catalog import shop_config

SVG = "{http://www.w3.org/2000/svg}"
NODE = re.compile(r'^  (\w+)(\(\(|\[\(|\[\[|\()"(.*)"(\)\)|\)\]|\]\]|\))$')
EDGE = re.compile(r"^  (\w+) (-->|-\.->)(?:\|(.*)\|)? (\w+)$")
JWT = {"issuer": "https://id.example.com/", "jwks_uri": "https://id.example.com/jwks.json"}


def platform(*services: dict[str, Any]) -> PlatformConfig:
    return PlatformConfig.model_validate(
        {
            "environment": "dev",
            "target": "kubernetes",
            "owner": "team",
            "cost_center": "cc-1",
            "jwt": JWT,
            "services": [{"image": f"acme/{s['name']}:1.0.0", **s} for s in services],
        }
    )


def small() -> PlatformConfig:
    return platform(
        {"name": "web", "calls": ["api"], "routes": [{"host": "www.example.com", "auth": False}]},
        {
            "name": "api",
            "calls": ["auth"],
            "database": {"storage_gb": 7},
            "queue": {"publishes": ["jobs"]},
            "routes": [
                {"host": "api.example.com", "path": "/v1"},
                {"host": "api.example.com", "path": "/v2"},
            ],
        },
        {"name": "auth"},
        {"name": "worker", "queue": {"consumes": ["jobs"]}},
    )


def nodes(text: str) -> list[tuple[str, str, str]]:
    """(id, opening bracket, label) per node definition line."""
    return [(m[1], m[2], m[3]) for line in text.splitlines() if (m := NODE.match(line))]


def edges(text: str) -> list[tuple[str, str, str, str]]:
    """(source, arrow, label, target) per edge line."""
    return [(m[1], m[2], m[3] or "", m[4]) for line in text.splitlines() if (m := EDGE.match(line))]


def service_edges(text: str) -> list[tuple[str, str]]:
    return [(s, t) for s, _, _, t in edges(text) if s.startswith("svc_") and t.startswith("svc_")]


def expected_calls(config: PlatformConfig) -> list[tuple[str, str]]:
    return [(service_id(s.name), service_id(c)) for s in config.services for c in s.calls]


def test_every_service_is_one_rounded_node() -> None:
    config = shop_config()
    defined = [(i, shape, label) for i, shape, label in nodes(mermaid(config)) if i.startswith("svc_")]
    assert sorted(defined) == sorted((service_id(s.name), "(", s.name) for s in config.services)
    assert len(defined) == len(config.services) == 7


def test_call_edges_are_exactly_the_calls() -> None:
    config = shop_config()
    drawn = service_edges(mermaid(config))
    assert Counter(drawn) == Counter(expected_calls(config))
    assert ("svc_orders", "svc_payments") in drawn and ("svc_cart", "svc_catalog") in drawn
    assert all(arrow == "-->" for s, arrow, _, t in edges(mermaid(config)) if (s, t) in drawn)


def test_public_routes_come_from_the_gateway_with_host_path_and_auth_marker() -> None:
    config = shop_config()
    text = mermaid(config)
    assert ("gateway", "((", "internet<br/>API gateway") in nodes(text)
    routes = {t: label for s, _, label, t in edges(text) if s == "gateway"}
    assert routes == {
        "svc_orders": '"api.rampart.localtest.me/orders (auth)"',
        "svc_catalog": '"api.rampart.localtest.me/catalog (open)"',
        "svc_cart": '"api.rampart.localtest.me/cart (auth)"',
        "svc_backoffice": '"admin.rampart.localtest.me/ (auth)"',
    }
    assert "  class svc_orders,svc_cart,svc_backoffice public" in text.splitlines()
    assert "  class svc_catalog open" in text.splitlines()
    assert any(line.startswith("  classDef public fill:") for line in text.splitlines())


def test_databases_and_queues_with_their_edges() -> None:
    config = shop_config()
    text = mermaid(config)
    defined = nodes(text)
    owners = [s for s in config.services if s.database is not None]
    assert [d for d in defined if d[0].startswith("db_")] == [
        (database_id(s.name), "[(", f"{s.name}-db<br/>postgres {s.database.storage_gb} GB")
        for s in owners
        if s.database is not None
    ]
    assert ("db_inventory", "[(", "inventory-db<br/>postgres 5 GB") in defined
    assert [d for d in defined if d[0].startswith("q_")] == [
        ("q_order_created", "[[", "order-created"),
        ("q_payment_settled", "[[", "payment-settled"),
    ]
    drawn = edges(text)
    assert sorted((s, t) for s, _, _, t in drawn if t.startswith("db_")) == sorted(
        (service_id(s.name), database_id(s.name)) for s in owners
    )
    assert sorted((s, t) for s, a, label, t in drawn if label == "publish" and a == "-.->") == [
        ("svc_orders", "q_order_created"),
        ("svc_payments", "q_payment_settled"),
    ]
    assert sorted((s, t) for s, a, label, t in drawn if label == "consume" and a == "-.->") == [
        ("q_order_created", "svc_notifications"),
        ("q_payment_settled", "svc_inventory"),
        ("q_payment_settled", "svc_notifications"),
    ]


def test_a_hand_built_catalog() -> None:
    text = mermaid(small())
    assert service_edges(text) == [("svc_web", "svc_api"), ("svc_api", "svc_auth")]
    assert ("gateway", "-->", '"www.example.com/ (open)"', "svc_web") in edges(text)
    # Two routes to one service: one edge, one label line each.
    assert (
        "gateway",
        "-->",
        '"api.example.com/v1 (auth)<br/>api.example.com/v2 (auth)"',
        "svc_api",
    ) in edges(text)
    assert ("db_api", "[(", "api-db<br/>postgres 7 GB") in nodes(text)
    assert ("svc_api", "-.->", "publish", "q_jobs") in edges(text)
    assert ("q_jobs", "-.->", "consume", "svc_worker") in edges(text)
    assert len(edges(text)) == 7
    assert "  class svc_api public" in text and "  class svc_web open" in text


def test_no_gateway_without_public_routes() -> None:
    text = mermaid(platform({"name": "a", "calls": ["b"]}, {"name": "b"}))
    assert [n[0] for n in nodes(text)] == ["svc_a", "svc_b"]
    assert edges(text) == [("svc_a", "-->", "", "svc_b")]


def test_adding_a_call_adds_exactly_one_edge() -> None:
    before = shop_config()
    raw = before.model_dump()
    raw["services"][5]["calls"] = [*raw["services"][5]["calls"], "catalog"]  # notifications -> catalog
    after = PlatformConfig.model_validate(raw)
    old, new = Counter(edges(mermaid(before))), Counter(edges(mermaid(after)))
    assert new - old == Counter({("svc_notifications", "-->", "", "svc_catalog"): 1})
    assert not old - new
    assert len(SvgTree(svg(after)).edges) == len(SvgTree(svg(before)).edges) + 1


def test_labels_with_markup_characters_are_escaped() -> None:
    config = platform({"name": "a", "routes": [{"host": "x.example.com", "path": "/a&b'c;d", "auth": False}]})
    assert '"x.example.com/a#38;b#39;c#59;d (open)"' in mermaid(config)
    labels = [t.text for t in ET.fromstring(svg(config)).iter(f"{SVG}text") if t.get("class") == "label"]
    assert labels == ["x.example.com/a&b'c;d (open)"]


# --------------------------------------------------------------------------------------------------- svg


class SvgTree:
    def __init__(self, text: str) -> None:
        self.root = ET.fromstring(text)
        self.groups = [g for g in self.root.iter(f"{SVG}g") if "class" in g.attrib]
        self.nodes = [g for g in self.groups if g.get("class", "").split()[0] == "node"]
        self.edges = [g for g in self.groups if g.get("class", "").split()[0] == "edge"]

    def box(self, node_id: str) -> tuple[float, float, float, float]:
        rect = next(g for g in self.nodes if g.get("id") == node_id).find(f"{SVG}rect")
        assert rect is not None
        return tuple(float(rect.get(k, "nan")) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


def drawn_points(tree: SvgTree) -> list[tuple[float, float]]:
    """Every coordinate outside <defs> (whose marker shapes live in their own small viewBox)."""
    points = []
    defs = {id(e) for d in tree.root.iter(f"{SVG}defs") for e in d.iter()}
    for element in tree.root.iter():
        if id(element) in defs:
            continue
        tag, a = element.tag.removeprefix(SVG), element.attrib
        if tag == "rect":
            x, y, w, h = (float(a[k]) for k in ("x", "y", "width", "height"))
            points += [(x, y), (x + w, y + h)]
        elif tag == "text":
            # The glyphs too: 12px monospace, ~7.5px a character, anchored at the middle or the end.
            x, y, width = float(a["x"]), float(a["y"]), 7.5 * len(element.text or "")
            left = x - width if a.get("text-anchor") == "end" else x - width / 2
            points += [(left, y - 12), (left + width, y + 3)]
        elif tag == "path":
            points += [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", a["d"])]
            assert re.fullmatch(r"(?:[MCL]-?[\d.]+,-?[\d.]+(?: -?[\d.]+,-?[\d.]+)* ?)+", a["d"]), a["d"]
    return points


def path_samples(d: str) -> list[tuple[float, float]]:
    """Points along a path of M, L and C commands (absolute coordinates)."""
    samples: list[tuple[float, float]] = []
    here = (0.0, 0.0)
    for command, args in re.findall(r"([MCL])([^MCL]+)", d):
        pts = [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", args)]
        if command == "C":
            (ax, ay), (bx, by), (cx, cy) = pts
            for k in range(1, 21):
                t = k / 20
                u = 1 - t
                samples.append(
                    (
                        u**3 * here[0] + 3 * u * u * t * ax + 3 * u * t * t * bx + t**3 * cx,
                        u**3 * here[1] + 3 * u * u * t * ay + 3 * u * t * t * by + t**3 * cy,
                    )
                )
        elif command == "L":
            samples += [
                (here[0] + (pts[0][0] - here[0]) * k / 20, here[1] + (pts[0][1] - here[1]) * k / 20)
                for k in range(21)
            ]
        here = pts[-1]
    return samples


def test_edges_never_cut_through_a_box() -> None:
    config = shop_config()
    tree = SvgTree(svg(config))
    boxes = {g.get("id", ""): tree.box(g.get("id", "")) for g in tree.nodes}
    long_edges = 0
    for group in tree.edges:
        path = group.find(f"{SVG}path")
        assert path is not None
        ends = {group.get("data-source"), group.get("data-target")}
        samples = path_samples(path.get("d", ""))
        for node_id, (x, y, w, h) in boxes.items():
            if node_id not in ends:
                assert not [p for p in samples if x < p[0] < x + w and y < p[1] < y + h], (ends, node_id)
        source, target = (boxes[e] for e in (group.get("data-source", ""), group.get("data-target", "")))
        long_edges += target[0] > source[0] + source[2] + 200
    # Several edges here skip columns (gateway -> orders, orders -> inventory, ...) and still miss every box.
    assert long_edges >= 4


def test_svg_has_a_box_per_node_and_an_arrow_per_edge() -> None:
    config = shop_config()
    graph = build_graph(config)
    tree = SvgTree(svg(config))
    assert [g.get("id") for g in tree.nodes] == [n.id for n in graph.nodes]
    assert all(len(g.findall(f"{SVG}rect")) == 1 for g in tree.nodes)
    node_texts = {t.text for g in tree.nodes for t in g.iter(f"{SVG}text")}
    assert {s.name for s in config.services} <= node_texts
    assert {"order-created", "payment-settled", "orders-db", "postgres 5 GB"} <= node_texts
    arrows = [p for g in tree.edges for p in g.iter(f"{SVG}path") if p.get("marker-end")]
    assert len(arrows) == len(tree.edges) == len(graph.edges) == 19
    assert [(g.get("data-source"), g.get("data-target")) for g in tree.edges] == [
        (e.source, e.target) for e in graph.edges
    ]
    dashed = [g.get("class", "") for g in tree.edges if g.find(f"{SVG}path[@stroke-dasharray]") is not None]
    assert sorted(dashed) == ["edge consume"] * 3 + ["edge publish"] * 2
    labels = sorted(t.text or "" for t in tree.root.iter(f"{SVG}text") if t.get("class") == "label")
    assert labels == sorted(line for e in graph.edges for line in e.label)
    markers = {m.get("id") for m in tree.root.iter(f"{SVG}marker")}
    assert {p.get("marker-end") for p in arrows} == {f"url(#{m})" for m in markers}


@pytest.mark.parametrize("name", ["shop", "small", "cycle", "big", "labels"])
def test_svg_coordinates_lie_inside_the_viewbox(name: str) -> None:
    configs: dict[str, Callable[[], PlatformConfig]] = {
        "shop": shop_config,
        "small": small,
        # Mutual calls (cycles) loop out to the right; a self-call never passes validation but must draw.
        "cycle": lambda: platform({"name": "a", "calls": ["b", "a"]}, {"name": "b", "calls": ["a"]}),
        # Three label lines stacked above the topmost box, and a long host.
        "labels": lambda: platform(
            {"name": "a", "routes": [{"host": f"h{i}.example.com", "path": "/x" * 30} for i in range(3)]},
            {"name": "b", "routes": [{"host": "b.example.com"}]},
        ),
        "big": lambda: platform(
            *({"name": f"s{i}", "calls": [f"s{(i * 7 + 3) % 40}"] if i % 3 else []} for i in range(40))
        ),
    }
    tree = SvgTree(svg(configs[name]()))
    left, top, width, height = (float(v) for v in tree.root.attrib["viewBox"].split())
    assert (left, top) == (0, 0)
    assert (float(tree.root.attrib["width"]), float(tree.root.attrib["height"])) == (width, height)
    points = drawn_points(tree)
    assert len(points) > 10
    outside = [p for p in points if not (0 <= p[0] <= width and 0 <= p[1] <= height)]
    assert not outside


def test_svg_layout_runs_left_to_right() -> None:
    config = shop_config()
    tree = SvgTree(svg(config))

    def x(node_id: str) -> float:
        return tree.box(node_id)[0]

    public = [s.name for s in config.services if s.routes]
    assert all(x("gateway") < x(service_id(p)) for p in public)
    assert min(x(n.id) for n in build_graph(config).nodes if n.id != "gateway") > x("gateway")
    # Callees right of callers (the local catalog has no call cycle).
    assert all(x(service_id(c)) > x(service_id(s.name)) for s in config.services for c in s.calls)
    for service in config.services:
        if service.database is not None:
            assert x(database_id(service.name)) > x(service_id(service.name))
        for queue in service.queue.publishes:
            consumers = [c.name for c in config.services if queue in c.queue.consumes]
            assert x(service_id(service.name)) < x(queue_id(queue)) < min(x(service_id(c)) for c in consumers)
    # No two boxes overlap.
    boxes = [tree.box(g.get("id", "")) for g in tree.nodes]
    for i, (ax, ay, aw, ah) in enumerate(boxes):
        for bx, by, bw, bh in boxes[i + 1 :]:
            assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay


def test_output_is_deterministic(tmp_path: Path) -> None:
    config = shop_config()
    copy = PlatformConfig.model_validate(config.model_dump())
    assert svg(config) == svg(copy) and mermaid(config) == mermaid(copy)
    render(config, tmp_path / "a.svg")
    render(copy, tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


def test_every_stack_draws(stack: str) -> None:
    config = stack_config(stack)
    tree = SvgTree(svg(config))
    assert len(tree.nodes) == len(build_graph(config).nodes)
    assert Counter(service_edges(mermaid(config))) == Counter(expected_calls(config))


# ------------------------------------------------------------------------------------------------ render


def test_render_picks_the_format_by_suffix(tmp_path: Path) -> None:
    config = small()
    assert render(config, tmp_path / "g.mmd") == "mermaid"
    assert (tmp_path / "g.mmd").read_text() == mermaid(config)
    assert render(config, tmp_path / "docs" / "g.md") == "markdown"
    assert (tmp_path / "docs" / "g.md").read_text() == f"```mermaid\n{mermaid(config)}```\n"
    assert render(config, tmp_path / "g.SVG") == "svg"
    assert (tmp_path / "g.SVG").read_text() == svg(config)


def test_render_rejects_an_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.mmd, \.md, \.svg") as caught:
        render(small(), tmp_path / "g.png")
    assert "\n" not in str(caught.value) and "g.png" in str(caught.value)
    assert not (tmp_path / "g.png").exists()


# ------------------------------------------------------------------------------------------------ legend


def test_the_svg_legend_explains_every_style_and_edge_kind_drawn() -> None:
    config = shop_config()
    tree = SvgTree(svg(config))
    (legend,) = [g for g in tree.groups if g.get("class") == "legend"]
    texts = [t.text for t in legend.iter(f"{SVG}text")]
    graph = build_graph(config)
    drawn_styles = {n.style for n in graph.nodes}
    assert texts[: len(drawn_styles)] == [
        text for style, text in LEGEND_STYLES.items() if style in drawn_styles
    ]
    swatches = {r.get("fill") for r in legend.iter(f"{SVG}rect")}
    assert swatches == {STYLES[style][0] for style in drawn_styles}
    arrows = {p.get("marker-end") for p in legend.iter(f"{SVG}path")}
    assert arrows == {f"url(#arrow-{kind})" for kind in ("route", "call", "database", "publish")}
    # The legend is below every node, not over one.
    legend_top = min(float(r.get("y", "0")) for r in legend.iter(f"{SVG}rect"))
    assert all(y + h < legend_top for _, y, _, h in (tree.box(g.get("id", "")) for g in tree.nodes))


def test_the_legend_shows_only_what_the_graph_draws() -> None:
    config = platform({"name": "a", "calls": ["b"]}, {"name": "b"})
    tree = SvgTree(svg(config))
    (legend,) = [g for g in tree.groups if g.get("class") == "legend"]
    assert [t.text for t in legend.iter(f"{SVG}text")] == ["service", LEGEND_EDGES["call"]]
    text = mermaid(config)
    assert "  subgraph legend [Legend]" in text.splitlines()
    legend_nodes = [line.strip() for line in text.splitlines() if line.startswith("    legend_")]
    assert legend_nodes[0] == 'legend_service("service"):::service'
    assert not any("legend_gateway" in line or "legend_database" in line for line in legend_nodes)
    # Legend samples are not graph nodes.
    assert [n[0] for n in nodes(text)] == ["svc_a", "svc_b"]
