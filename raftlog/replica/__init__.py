"""A replica of one Raft group on this node: the trio shell around the pure Raft core."""
