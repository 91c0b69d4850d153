"""wool.plugins.LimitFilter and printable: repeated lines about others' records are
rate-limited, and their fields escaped."""

from __future__ import annotations

import logging

import pytest

from wool import plugins


def _messages(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == name]


def test_printable_escapes_control_and_format_characters():
    assert plugins.printable("worker-1") == "worker-1"
    assert plugins.printable("a\x1b[2J\nb\u202ec") == "a\\x1b[2J\\nb\\u202ec"
    assert plugins.printable(None) == "None"


def test_a_filter_on_a_logger_lets_through_a_burst_of_each_kind_of_warning(caplog):
    logger = logging.getLogger("tests.limit.attached")
    limit = plugins.LimitFilter(burst=2, period=3600)
    logger.addFilter(limit)
    try:
        with caplog.at_level(logging.INFO, logger.name):
            for index in range(5):
                logger.warning("cannot reach %s", f"fake-{index}\n")
                logger.info("routine line %d", index)  # below the filter's level: all pass
            logger.warning("another kind %s", "x")
    finally:
        logger.removeFilter(limit)
    assert _messages(caplog, logger.name) == [
        "cannot reach fake-0\\n",
        "routine line 0",
        "cannot reach fake-1\\n",
        "routine line 1",
        "routine line 2",
        "routine line 3",
        "routine line 4",
        "another kind x",
    ]


def test_each_limiter_logged_through_has_a_budget_of_its_own(caplog):
    logger = logging.getLogger("tests.limit.direct")
    first, second = (plugins.LimitFilter(burst=1, level=logging.INFO) for _ in range(2))
    with caplog.at_level(logging.INFO, logger.name):
        for limit in (first, second, first, second):
            limit.log(logger, logging.INFO, "ignoring %s", "\x1b]0;title\x07")
    assert _messages(caplog, logger.name) == ["ignoring \\x1b]0;title\\x07"] * 2


def test_a_limiter_without_a_budget_is_refused():
    with pytest.raises(ValueError, match="burst >= 1 and period > 0"):
        plugins.LimitFilter(burst=0)
