"""The lifecycle rules' reachability: which of a few target resources a resource waits for.

`Waits` answers per target set instead of materialising each resource's whole closure (which grows
with the catalog); the answer must be exactly the targets inside that closure, on any graph.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from policies.waits import Node, Waits, closure

URNS = [f"urn:pulumi:s::p::t::r{i}" for i in range(12)]


@st.composite
def graphs(draw: st.DrawFn) -> list[Node]:
    """A plan: each resource depends on earlier ones and has an earlier parent, as registration
    order makes it, with components and steps mixed in (folding a component into its descendants
    can still make the create graph cyclic)."""
    size = draw(st.integers(1, len(URNS)))
    nodes = []
    for i in range(size):
        earlier = URNS[:i]
        nodes.append(
            Node(
                urn=URNS[i],
                type="t",
                custom=draw(st.booleans()),
                step=draw(st.booleans()),
                dependencies=tuple(draw(st.lists(st.sampled_from(earlier), max_size=3))) if earlier else (),
                parent=draw(st.sampled_from([None, *earlier])),
            )
        )
    return nodes


@given(graphs(), st.data())
def test_targets_reached_are_exactly_those_in_the_closure(nodes: list[Node], data: st.DataObject) -> None:
    waits = Waits(nodes)
    urns = [node.urn for node in nodes]
    targets = frozenset(data.draw(st.lists(st.sampled_from(urns), max_size=4)))
    for urn in urns:
        assert waits.created_after(urn, targets) == targets & closure(waits.create, urn)
        assert waits.deleted_after(urn, targets) == targets & closure(waits.destroy, urn)


def test_a_chain_far_deeper_than_the_recursion_limit() -> None:
    # A service that waits for the services it calls, and they for theirs: chains thousands deep.
    chain = [
        Node(urn=f"r{i}", type="t", custom=True, step=True, dependencies=(f"r{i - 1}",) if i else ())
        for i in range(5000)
    ]
    waits = Waits(chain)
    assert waits.created_after("r4999", {"r0", "r4999", "absent"}) == {"r0"}
    assert waits.created_after("r0", {"r1"}) == frozenset()
    assert waits.deleted_after("r4999", {"r0", "r2500"}) == {"r0", "r2500"}


def test_a_malformed_cycle_ends() -> None:
    nodes = [
        Node(urn="a", type="t", custom=True, step=True, dependencies=("b",)),
        Node(urn="b", type="t", custom=True, step=True, dependencies=("a",)),
        Node(urn="c", type="t", custom=True, step=True, dependencies=("a",)),
    ]
    waits = Waits(nodes)
    assert "a" in waits.created_after("c", {"a", "b"})
