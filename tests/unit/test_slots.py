"""The in-flight slots of a proxy: a FIFO counting semaphore."""

from __future__ import annotations

import asyncio

import pytest

from tests.support import conditions
from wool._caller_slots import Slots


async def until(predicate) -> None:
    """Let the loop run until ``predicate()`` holds (5 s at most)."""
    await conditions.until(predicate, "the waiters move", 5, step=0)


async def test_acquire_takes_free_slots_without_waiting():
    slots = Slots(2)
    await slots.acquire()
    assert not slots.exhausted
    await slots.acquire()
    assert slots.exhausted and slots.free == 0


async def test_waiters_get_released_slots_in_arrival_order():
    slots = Slots(1)
    await slots.acquire()
    order: list[int] = []

    async def waiter(i: int) -> None:
        await slots.acquire()
        order.append(i)

    tasks = [asyncio.ensure_future(waiter(i)) for i in range(5)]
    await until(lambda: slots.waiting == 5)
    for i in range(5):
        slots.release()
        await until(lambda i=i: len(order) == i + 1)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert slots.free == 0
    slots.release()
    assert slots.free == 1


async def test_a_cancelled_waiter_does_not_lose_a_slot():
    slots = Slots(1)
    await slots.acquire()
    cancelled = asyncio.ensure_future(slots.acquire())
    later = asyncio.ensure_future(slots.acquire())
    await until(lambda: slots.waiting == 2)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    slots.release()
    async with asyncio.timeout(5):
        await later  # the slot skipped the cancelled waiter
    slots.release()
    assert slots.free == 1


async def test_a_slot_handed_over_as_its_waiter_is_cancelled_passes_on():
    slots = Slots(1)
    await slots.acquire()
    first = asyncio.ensure_future(slots.acquire())
    second = asyncio.ensure_future(slots.acquire())
    await until(lambda: slots.waiting == 2)
    slots.release()  # resolves first's future...
    first.cancel()  # ...but first is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await first
    async with asyncio.timeout(5):
        await second
    assert slots.free == 0


async def test_many_waiters_all_get_through():
    slots = Slots(3)
    done = 0

    async def user() -> None:
        nonlocal done
        await slots.acquire()
        await asyncio.sleep(0)  # hold the slot across a loop pass, so others queue
        done += 1
        slots.release()

    async with asyncio.timeout(30):
        await asyncio.gather(*(user() for _ in range(5000)))
    assert done == 5000 and slots.free == 3
