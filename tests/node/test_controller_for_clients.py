"""Which node Metadata names as the controller, when the controller group has no leader."""

from __future__ import annotations

import pathlib

from raftlog.config import NodeConfig
from raftlog.controller.service import Controller
from raftlog.node.broker import NO_NODE, Broker
from tests.node.test_metadata import state_with_nodes


def test_without_a_controller_leader_a_registered_node_names_itself(
    tmp_path: pathlib.Path,
) -> None:
    broker = Broker(NodeConfig(node_id=2, data_dir=tmp_path), Controller(state_with_nodes(1, 2, 3)))
    assert broker.controller_id() == NO_NODE  # the truth, as the admin API reports it
    assert broker.controller_for_clients() == 2  # it forwards, once a leader is elected


def test_a_node_not_yet_registered_names_no_controller(tmp_path: pathlib.Path) -> None:
    """Clients could not reach it by the Metadata's broker list; -1 makes them ask again."""
    broker = Broker(NodeConfig(node_id=4, data_dir=tmp_path), Controller(state_with_nodes(1, 2, 3)))
    assert broker.controller_for_clients() == NO_NODE
