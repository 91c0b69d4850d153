"""Fixtures of the observe tests: a handler that keeps what the caller's logging receives."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


class Keep(logging.Handler):
    """Keeps every record that reaches it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def named(self, prefix: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name.startswith(prefix)]


@pytest.fixture
def kept() -> Iterator[Keep]:
    """A handler on the root logger at INFO (restored afterwards)."""
    root = logging.getLogger()
    handler, level = Keep(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
