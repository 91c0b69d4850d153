"""The autouse fixture of tests that hold calls on ``tests.lb_leastbusy.routines`` gates:
each test starts with no gates, and every gate it left closed is opened afterwards."""

from __future__ import annotations

import pytest

from tests.lb_leastbusy import routines as lr


@pytest.fixture(autouse=True)
def fresh_gates():
    lr.reset()
    yield
    for event in list(lr.GATES.values()):
        event.set()
    lr.reset()
