"""The admin HTTP API, Prometheus metrics and the console of a node."""
