"""Structured logs: one line per significant event, as key=value text or JSON.

Events are named (`listening`, `leader_changed`, `segment_sealed`, ...) and carry fields,
so operators can grep and machines can parse. Nothing on the per-record path logs.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER_NAME = "raftlog"


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [f"ts={stamp}.{int(record.msecs):03d}Z", f"level={record.levelname.lower()}"]
        parts.append(f"event={record.getMessage()}")
        for key, value in fields.items():
            text = str(value)
            parts.append(f"{key}={json.dumps(text) if (' ' in text or not text) else text}")
        return " ".join(parts)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        document.update(getattr(record, "fields", {}))
        return json.dumps(document, default=str)


def configure(log_format: str, level: str) -> None:
    """Send raftlog's events to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if log_format == "json" else _KeyValueFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one named event with its fields."""
    logger = logging.getLogger(LOGGER_NAME)
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"fields": fields})
