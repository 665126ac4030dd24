"""The pure parts of joining by seed: address precedence, the remembered cluster file, the
join messages, `--seeds` parsing, and the controller's refusal rules (`join_node`)."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftlog.config import SEEDS_MAX, ConfigError, HostPort, parse_seeds, resolve
from raftlog.controller.metadata import (
    INVALID_REQUEST,
    NODE_ID_MAX,
    NODES_MAX,
    MetadataError,
    MetadataState,
)
from raftlog.node import address_book
from raftlog.node.address_book import ClusterFileError, ClusterMemory, merge_addresses
from raftlog.node.join import (
    JOIN_REQUEST_BYTES_MAX,
    JoinAnswer,
    JoinRefused,
    JoinRequest,
    refusal,
    retry_later,
)

# -- address book ----------------------------------------------------------------------

addresses = st.dictionaries(
    st.integers(1, 20), st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(1, 65535))
)


@given(static=addresses, learned=addresses, remembered=addresses, own=st.integers(1, 20))
def test_merge_prefers_static_then_learned_then_remembered(
    static: dict[int, Any], learned: dict[int, Any], remembered: dict[int, Any], own: int
) -> None:
    merged = merge_addresses(own_id=own, static=static, learned=learned, remembered=remembered)
    assert own not in merged
    assert set(merged) == (set(static) | set(learned) | set(remembered)) - {own}
    for node, address in merged.items():
        expected = static.get(node) or learned.get(node) or remembered[node]
        assert address == expected


def test_merge_is_bounded_by_the_node_limit() -> None:
    many = {node: ("h", 1) for node in range(1, NODES_MAX + 50)}
    merged = merge_addresses(own_id=NODES_MAX + 100, static={}, learned=many, remembered={})
    assert len(merged) == NODES_MAX
    assert max(merged) == NODES_MAX


def _memory() -> ClusterMemory:
    return ClusterMemory(4, "abc", (1, 2, 3), (), ()).with_members(
        {2: ("127.0.0.1", 9002), 1: ("127.0.0.1", 9001), 4: ("127.0.0.1", 9004)}
    )


def test_cluster_file_round_trips_atomically(tmp_path: pathlib.Path) -> None:
    assert address_book.load(tmp_path) is None
    memory = _memory()
    address_book.save(tmp_path, memory)
    assert address_book.load(tmp_path) == memory
    assert memory.members[0][0] == 1  # kept by id
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.update(format=99), "format"),
        (lambda d: d.update(node_id=0), "bad node id"),
        (lambda d: d.update(controller_voters=[]), "needs voters"),
        (lambda d: d.update(controller_learners=[1]), "apart from learners"),
        (lambda d: d.update(members=[[1, "", 5]]), "bad host"),
        (lambda d: d.update(members=[[1, "h", 70000]]), "bad port"),
        (lambda d: d.update(members=[[1, "h"]]), "a member is"),
        (lambda d: d.update(members=[[n, "h", 1] for n in range(1, NODES_MAX + 2)]), "at most"),
        (lambda d: d.pop("members"), "members"),
    ],
)
def test_a_damaged_cluster_file_is_refused_with_its_reason(mutate: Any, reason: str) -> None:
    document = json.loads(_memory().encode())
    mutate(document)
    with pytest.raises(ClusterFileError, match=reason):
        ClusterMemory.decode(json.dumps(document).encode(), source="cluster.json")


def test_a_cluster_file_that_is_not_json_or_too_big_is_refused() -> None:
    with pytest.raises(ClusterFileError, match="not JSON"):
        ClusterMemory.decode(b"{", source="x")
    with pytest.raises(ClusterFileError, match="over"):
        ClusterMemory.decode(b" " * (address_book.CLUSTER_FILE_BYTES_MAX + 1), source="x")


# -- join messages ---------------------------------------------------------------------


def test_join_request_round_trips_and_is_bounded() -> None:
    request = JoinRequest(4, ("10.0.0.4", 9093), ("10.0.0.4", 9092), True, "cid")
    assert JoinRequest.decode(request.encode()) == request
    with pytest.raises(ValueError, match="over"):
        JoinRequest.decode(b" " * (JOIN_REQUEST_BYTES_MAX + 1))
    for bad in ({"node_id": "4"}, {"node_id": True}, {"internal_port": 0}, {"kafka_host": ""}):
        document = json.loads(request.encode())
        document.update(bad)
        with pytest.raises(ValueError):
            JoinRequest.decode(json.dumps(document).encode())


def test_join_answer_round_trips_refuses_and_retries() -> None:
    answer = JoinAnswer("cid", {1: ("h", 1), 4: ("h", 4)}, (1, 2, 3), (4,))
    assert JoinAnswer.decode(answer.encode()) == answer
    with pytest.raises(JoinRefused, match="duplicate"):
        JoinAnswer.decode(refusal("duplicate id"))
    with pytest.raises(ValueError, match="cannot register nodes now: starting"):
        JoinAnswer.decode(retry_later("starting"))
    document = json.loads(answer.encode())
    document["controller_voters"] = []
    with pytest.raises(ValueError, match="controller membership"):
        JoinAnswer.decode(json.dumps(document).encode())
    document["members"] = [[1, "h", 1]] * (NODES_MAX + 1)
    with pytest.raises(ValueError, match="at most"):
        JoinAnswer.decode(json.dumps(document).encode())


# -- --seeds ---------------------------------------------------------------------------


def test_seeds_parse_and_are_bounded() -> None:
    assert parse_seeds("a:1, b:2,", key="seeds") == (HostPort("a", 1), HostPort("b", 2))
    with pytest.raises(ConfigError, match="twice"):
        parse_seeds("a:1,a:1", key="seeds")
    with pytest.raises(ConfigError, match="real port"):
        parse_seeds("a:0", key="seeds")
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_seeds("1@a:1", key="seeds")
    too_many = ",".join(f"h:{port}" for port in range(1, SEEDS_MAX + 2))
    with pytest.raises(ConfigError, match=f"at most {SEEDS_MAX}"):
        parse_seeds(too_many, key="seeds")
    config = resolve(config_file=None, environment={"RAFTLOG_SEEDS": "h:1"}, flags={})
    assert config.seeds == (HostPort("h", 1),)
    assert config.as_text_dict()["seeds"] == "h:1"
    with pytest.raises(ConfigError, match="node_id: at most 2147483647"):
        resolve(config_file=None, environment={}, flags={"node_id": str(NODE_ID_MAX + 1)})
    for bad in ("0", "3600001"):
        with pytest.raises(ConfigError, match="join_timeout_ms"):
            resolve(config_file=None, environment={}, flags={"join_timeout_ms": bad})


# -- the controller's refusal rules ----------------------------------------------------


def _join(state: MetadataState, node_id: Any, port: int, **extra: Any) -> Any:
    command = {
        "type": "join_node",
        "node_id": node_id,
        "internal_host": "10.0.0.1",
        "internal_port": port,
        "kafka_host": "10.0.0.1",
        "kafka_port": port + 1000,
        **extra,
    }
    return state.apply(command)


def _refused(state: MetadataState, node_id: Any, port: int, reason: str, **extra: Any) -> None:
    before = dict(state.nodes)
    with pytest.raises(MetadataError, match=reason) as raised:
        _join(state, node_id, port, **extra)
    assert raised.value.error_code == INVALID_REQUEST
    assert state.nodes == before  # nothing changed


def test_join_registers_and_the_same_node_may_join_again() -> None:
    state = MetadataState(cluster_id="cid")
    node = _join(state, 4, 9004)
    assert state.nodes[4] == node and node.internal_port == 9004
    assert _join(state, 4, 9004) == node  # restart at the same address


@pytest.mark.parametrize("node_id", [0, -1, NODE_ID_MAX + 1, "4", True, None])
def test_join_refuses_bad_ids(node_id: Any) -> None:
    _refused(MetadataState(), node_id, 9004, "node id must be")


def test_join_refuses_a_duplicate_id_at_another_address_unless_it_rejoins() -> None:
    state = MetadataState(cluster_id="cid")
    _join(state, 4, 9004)
    _refused(state, 4, 9005, "already registered with internal address 10.0.0.1:9004")
    _refused(state, 4, 9005, "already registered", rejoin=True, cluster_id="other")
    moved = _join(state, 4, 9005, rejoin=True, cluster_id="cid")
    assert state.nodes[4] == moved and moved.internal_port == 9005


def test_join_refuses_an_address_another_node_holds_and_bad_addresses() -> None:
    state = MetadataState()
    _join(state, 4, 9004)
    _refused(state, 5, 9004, "is node 4's")
    _refused(state, 5, 0, "bad internal port")
    _refused(state, 5, 70000, "bad internal port")


def test_join_refuses_past_the_node_limit() -> None:
    state = MetadataState()
    for node in range(1, NODES_MAX + 1):
        _join(state, node, node)
    _refused(state, NODES_MAX + 1, NODES_MAX + 1, f"already has {NODES_MAX} nodes")
    _join(state, NODES_MAX, NODES_MAX)  # a known node may still rejoin
