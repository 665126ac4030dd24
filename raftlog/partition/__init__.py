"""Partitions as this node hosts them: produce and fetch over a replica group."""
