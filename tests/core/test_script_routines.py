"""Routines defined in a script's ``__main__`` (or a notebook) run on workers, and what
workers see of the module globals they read: rebinding is seen, in-place mutation is not."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import wool
from wool._routine_slots import SLOTS

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os
    import wool

    LIMIT = 10
    CONFIG = {"mode": "first"}


    def helper(x):
        return x + 1


    @wool.routine
    async def probe(x):
        return os.getpid(), min(x, LIMIT), CONFIG["mode"], helper(x)


    @wool.routine
    async def count(n):
        for i in range(n):
            yield min(i, LIMIT)


    def make_scaled(factor):
        @wool.routine
        async def scaled(x):
            return x * factor
        return scaled


    async def main():
        global LIMIT, helper
        seen = {}
        async with wool.WorkerPool(size=1):
            pid, *seen["first"] = await probe(50)
            seen["remote"] = pid != os.getpid()
            seen["repeated"] = [tuple((await probe(i))[1:]) for i in (1, 2)]
            CONFIG["mode"] = "mutated in place"
            seen["after_mutation"] = (await probe(50))[1:]
            LIMIT = 20
            seen["after_rebinding"] = (await probe(50))[1:]
            helper = lambda x: x - 1
            seen["after_redefining_helper"] = (await probe(50))[1:]
            seen["closures"] = [await make_scaled(k)(3) for k in (2, 5)]
            seen["streamed"] = [i async for i in count(3)]
            seen["prefetched"] = [i async for i in wool.prefetch(count(3), 2)]
        print(json.dumps(seen))


    asyncio.run(main())
    """
)


def test_a_main_routine_sees_rebound_globals_but_not_in_place_mutation(tmp_path: Path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["remote"] is True
    assert seen["first"] == [10, "first", 51]
    assert seen["repeated"] == [[1, "first", 2], [2, "first", 3]]
    # The by-value pickle is reused: a dict mutated in place is not sent again ...
    assert seen["after_mutation"] == [10, "first", 51]
    # ... but a rebound global (or a redefined helper) makes a fresh pickle.
    assert seen["after_rebinding"] == [20, "mutated in place", 51]
    assert seen["after_redefining_helper"] == [20, "mutated in place", 49]
    assert seen["closures"] == [6, 15]
    # Generator routines from __main__ stream too, pulled and read ahead.
    assert seen["streamed"] == seen["prefetched"] == [0, 1, 2]


async def test_more_distinct_by_value_routines_than_a_session_keeps_all_run_their_own_code():
    def make_scaled(factor: int):
        @wool.routine
        async def scaled(x: int) -> int:
            return x * factor

        return scaled

    routines = [make_scaled(k) for k in range(SLOTS + 40)]
    async with wool.WorkerPool(size=1):
        # Twice over, so that the second pass finds its slots taken by later routines.
        for _ in range(2):
            results = await asyncio.gather(*(routine(3) for routine in routines))
            assert results == [3 * k for k in range(len(routines))]
        # A routine called again right after its slot was reused for another one.
        assert await routines[0](7) == 0 and await routines[-1](7) == 7 * (SLOTS + 39)
