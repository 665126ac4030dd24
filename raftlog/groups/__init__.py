"""Consumer groups: the coordinator and committed offsets kept in __consumer_offsets."""
