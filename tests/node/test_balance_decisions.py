"""The balancer's decision: hand led partitions back to preferred replicas that are ready."""

from raftlog.node.balance import LedHead, moves


def test_only_other_ready_preferred_replicas_get_leadership_back() -> None:
    heads = [
        LedHead(group_id=7, preferred=2, preferred_ready=True),
        LedHead(group_id=3, preferred=1, preferred_ready=True),  # this node is preferred
        LedHead(group_id=5, preferred=3, preferred_ready=False),  # lagging or cut off
        LedHead(group_id=4, preferred=3, preferred_ready=True),
    ]
    assert moves(1, heads, limit=5) == [(4, 3), (7, 2)]
    assert moves(1, heads, limit=1) == [(4, 3)]
    assert moves(1, []) == []
