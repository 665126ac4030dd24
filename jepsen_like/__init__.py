"""Jepsen-style safety checking for raftlog: histories, checkers, linearizability, reports.

Nothing here needs a running cluster: the workload runner records a history, and
everything in this package judges it after the fact.
"""
