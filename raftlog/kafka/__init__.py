"""The Kafka side of a node: listener, request dispatch and one handler module per API."""
