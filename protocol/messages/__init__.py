"""Generated Kafka message classes (`generated/`) and their shared runtime (`_runtime`)."""
