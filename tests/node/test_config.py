"""Configuration precedence and the rejection of unknown or malformed settings."""

from pathlib import Path

import pytest

from raftlog.config import ConfigError, FsyncPolicy, HostPort, NodeConfig, Peer, resolve
from raftlog.node.node import group_log_config
from raftlog.storage.config import CACHED_TAIL_BYTES_DEFAULT


def test_defaults_need_no_file() -> None:
    config = resolve(config_file=None, environment={})
    assert config == NodeConfig()
    assert config.kafka_addr == HostPort("127.0.0.1", 9092)
    assert config.data_dir == Path("raftlog-data")
    assert config.fsync is FsyncPolicy.ALWAYS


def test_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    file = tmp_path / "raftlog.toml"
    file.write_text('kafka_addr = "127.0.0.1:1001"\nnode_id = 4\nfsync = "relaxed"\n')
    environment = {"RAFTLOG_KAFKA_ADDR": "127.0.0.1:1002", "RAFTLOG_NODE_ID": "5"}
    config = resolve(
        config_file=file, environment=environment, flags={"kafka_addr": "127.0.0.1:1003"}
    )
    assert config.kafka_addr == HostPort("127.0.0.1", 1003)
    assert config.node_id == 5
    assert config.fsync is FsyncPolicy.RELAXED


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("file", "unknown setting 'fsync_policy'"),
        ("environment", "unknown setting 'fsync_policy'"),
    ],
)
def test_unknown_key_is_named(tmp_path: Path, source: str, expected: str) -> None:
    file = tmp_path / "raftlog.toml"
    file.write_text('fsync_policy = "always"\n')
    with pytest.raises(ConfigError, match=expected):
        if source == "file":
            resolve(config_file=file, environment={})
        else:
            resolve(config_file=None, environment={"RAFTLOG_FSYNC_POLICY": "always"})


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"kafka_addr": "nonsense"}, "kafka_addr: expected HOST:PORT"),
        ({"kafka_addr": "127.0.0.1:99999"}, "outside 0-65535"),
        ({"fsync": "sometimes"}, "fsync: expected one of always, relaxed"),
        ({"node_id": "0"}, "node_id: must be positive"),
        ({"peers": "1@127.0.0.1:1,1@127.0.0.1:2"}, "appears twice"),
        ({"log_format": "xml"}, "log_format"),
    ],
)
def test_bad_values_are_rejected_with_the_key(flags: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(config_file=None, environment={}, flags=flags)


def test_peers_parse_sorted() -> None:
    peers = Peer.parse_list("2@127.0.0.1:9002, 1@127.0.0.1:9001", key="peers")
    assert [peer.node_id for peer in peers] == [1, 2]
    assert str(peers[0]) == "1@127.0.0.1:9001"


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve(config_file=tmp_path / "absent.toml", environment={})


def test_inject_bug_comes_from_the_environment_and_refuses_unknown_names() -> None:
    from raftlog import bugs

    config = resolve(config_file=None, environment={"RAFTLOG_INJECT_BUG": "fetch-above-commit"})
    assert config.inject_bug == "fetch-above-commit"
    assert resolve(config_file=None, environment={}).inject_bug is None
    with pytest.raises(ConfigError, match="unknown bug 'lose-everything'"):
        resolve(config_file=None, environment={"RAFTLOG_INJECT_BUG": "lose-everything"})
    try:
        assert bugs.activate("stale-vote") is bugs.Bug.STALE_VOTE
        assert bugs.active(bugs.Bug.STALE_VOTE)
        assert bugs.raft_test_bug() == "count_stale_votes"
    finally:
        bugs.activate(None)
    assert not any(bugs.active(bug) for bug in bugs.Bug)


def test_cached_tail_bytes_reaches_every_group_log() -> None:
    default = resolve(config_file=None, environment={})
    assert group_log_config(default).cached_tail_bytes == CACHED_TAIL_BYTES_DEFAULT
    small = resolve(config_file=None, environment={"RAFTLOG_CACHED_TAIL_BYTES": "1048576"})
    assert group_log_config(small).cached_tail_bytes == 1 << 20
    keep_all = resolve(config_file=None, environment={}, flags={"cached_tail_bytes": "-1"})
    assert group_log_config(keep_all).cached_tail_bytes is None
    with pytest.raises(ConfigError, match="cached_tail_bytes: must be >= 0, or -1"):
        resolve(config_file=None, environment={}, flags={"cached_tail_bytes": "-2"})
    with pytest.raises(ConfigError, match="cached_tail_bytes: expected an integer"):
        resolve(config_file=None, environment={}, flags={"cached_tail_bytes": "lots"})
