"""Fixtures shared by the storage tests."""

from .page_cache_helpers import droppable

__all__ = ["droppable"]
