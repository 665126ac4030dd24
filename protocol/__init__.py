"""Kafka wire protocol codec (installed as `raftlog.protocol`); imports nothing else of raftlog."""
