"""The controller: cluster metadata replicated by a Raft group of its own."""
