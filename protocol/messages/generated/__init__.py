"""Generated from the Apache Kafka message schemas at apache/kafka commit
1eb7644349cb07139d6a3c1ad1986979647cac99; do not edit. Regenerate with `python -m raftlog.protocol.generator`.
"""
