"""A node: the nursery that owns the controller, the hosted groups and the listeners."""
