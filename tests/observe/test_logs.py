"""What routines log and print on workers is emitted again through the caller's logging."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import wool
from tests.cli.helpers import namespace, running
from tests.observe import routines

pytestmark = pytest.mark.timeout(120)


async def test_records_and_printed_lines_reach_the_caller_with_their_origin(kept):
    async with wool.WorkerPool(size=1) as pool:
        [worker] = pool.workers
        seen = await routines.chatty(7)
    assert seen["pid"] != os.getpid()
    records = [r for r in kept.records if r.name.startswith(("observe.", "wool.worker."))]
    texts = [(r.name, r.levelname, r.getMessage()) for r in records]
    assert texts == [
        ("observe.routines", "INFO", "info 7"),  # DEBUG is below the caller's level
        ("observe.other", "WARNING", "warning 7"),
        ("observe.routines", "ERROR", "failed 7"),
        ("wool.worker.stdout", "INFO", "out 7"),
        ("wool.worker.stderr", "WARNING", "err 7"),
        ("wool.worker.stdout", "INFO", "part of a line"),
        ("observe.routines", "WARNING", "from a thread 7"),
    ]
    for record in records:
        assert record.wool_routine == "chatty"
        assert record.wool_task_id == seen["task_id"]
        assert record.wool_worker == worker.uid
        assert record.wool_host == socket.gethostname()
        assert record.process == seen["pid"]
    failed = records[2]
    assert failed.exc_text is not None and "ValueError: boom" in failed.exc_text
    assert "ValueError: boom" in logging.Formatter().format(failed)
    assert failed.funcName == "chatty" and failed.pathname == routines.__file__
    assert not kept.named("grpc"), "gRPC's own records stay on the worker"


async def test_the_callers_levels_apply(kept):
    logging.getLogger("observe.other").setLevel(logging.ERROR)
    try:
        async with wool.WorkerPool(size=1):
            await routines.chatty(1)
    finally:
        logging.getLogger("observe.other").setLevel(logging.NOTSET)
    assert not kept.named("observe.other")
    assert [r.getMessage() for r in kept.named("observe.routines")][:2] == ["info 1", "failed 1"]


async def test_a_debug_caller_gets_debug_records(kept):
    logging.getLogger("observe.routines").setLevel(logging.DEBUG)
    try:
        async with wool.WorkerPool(size=1):
            await routines.chatty(2)
    finally:
        logging.getLogger("observe.routines").setLevel(logging.NOTSET)
    assert kept.named("observe.routines")[0].getMessage() == "debug 2"


async def test_lines_printed_by_concurrent_tasks_are_told_apart(kept):
    async with wool.WorkerPool(size=1):
        await asyncio.gather(routines.interleave("a", 50), routines.interleave("b", 50))
    lines = kept.named("wool.worker.stdout")
    assert len(lines) == 100
    by_task: dict[str, list[str]] = {}
    for record in lines:
        by_task.setdefault(record.wool_task_id, []).append(record.getMessage())
    assert sorted(by_task.values()) == [
        [f"a {i}" for i in range(50)],
        [f"b {i}" for i in range(50)],
    ]


async def test_every_record_of_a_task_arrives_in_order(kept):
    async with wool.WorkerPool(size=1):
        assert await routines.numbered(5000) == 5000
    messages = [r.getMessage() for r in kept.named("observe.routines")]
    assert messages == [f"record {i}" for i in range(5000)]
    assert not kept.named("wool.worker.logs"), "nothing was dropped"


async def test_a_grandchilds_record_reaches_the_original_caller(kept):
    async with wool.WorkerPool(size=2):
        assert await routines.nest(2) == 0
    got = [(r.wool_routine, r.getMessage()) for r in kept.records if hasattr(r, "wool_routine")]
    assert got == [
        ("nest", "entering depth 2"),
        ("nest", "entering depth 1"),
        ("grandchild", "at depth 0"),
        ("grandchild", "printed at depth 0"),
    ]
    ids = {r.wool_task_id for r in kept.records if hasattr(r, "wool_task_id")}
    assert len(ids) == 3, "each call names its own task"


async def test_a_generators_records_arrive_before_the_items_they_precede(kept):
    order: list[str] = []

    class Interleave(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.name == "observe.routines":
                order.append(record.getMessage())

    handler = Interleave()
    logging.getLogger().addHandler(handler)
    try:
        async with wool.WorkerPool(size=1):
            async for item in routines.stepping(2):
                order.append(f"item {item}")
    finally:
        logging.getLogger().removeHandler(handler)
    assert order == [
        "before item 0",
        "item 0",
        "before item 1",
        "item 1",
        "after the last item",
    ]


async def test_forward_logs_false_keeps_records_in_the_workers_own_log(kept, capfd):
    async with wool.WorkerPool(size=1, forward_logs=False) as pool:
        [worker] = pool.workers
        seen = await routines.chatty(3)
    assert not kept.named("observe.") and not kept.named("wool.worker.")
    out, err = capfd.readouterr()
    # The worker's own log: time, level, worker, task and routine, then logger and message.
    line = next(line for line in err.splitlines() if line.endswith("observe.other: warning 3"))
    date, time, level, uid, task, routine = line.split()[:6]
    assert (level, uid) == ("WARNING", worker.uid)
    assert (task, routine) == (f"task={seen['task_id']}", "routine=chatty")
    assert date.count("-") == 2 and time.count(":") == 2
    assert "out 3" in out.splitlines(), "printed lines stay on the worker's stdout"


async def test_a_slow_caller_loses_records_counted_and_reported_never_blocking(kept, tmp_path):
    """The caller's loop is blocked while the routine floods: the routine still finishes."""
    count, size = 40_000, 1000
    fifo = tmp_path / "done"
    os.mkfifo(fifo)
    blocked = threading.Event()

    class Stall(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if not blocked.is_set() and record.name == "observe.routines":
                blocked.set()
                # Blocks this whole process until the routine says it has logged everything.
                assert Path(fifo).read_text() == "done\n"

    handler = Stall()
    logging.getLogger().addHandler(handler)
    try:
        async with wool.WorkerPool(size=1):
            assert await routines.flood(count, size, str(fifo)) == count
    finally:
        logging.getLogger().removeHandler(handler)
    received = [int(r.getMessage().split()[1]) for r in kept.named("observe.routines")]
    losses = kept.named("wool.worker.logs")
    dropped = sum(r.args[0] for r in losses)
    assert dropped > 0, "the caller was slow: something must have been dropped"
    assert len(received) + dropped == count, "every record arrived or was counted"
    assert received == sorted(received), "order is kept"
    assert all(r.wool_routine == "flood" for r in losses)
    assert "were dropped" in losses[0].getMessage()


async def test_a_durable_workers_records_reach_the_caller(kept):
    ns = namespace()
    async with running("worker", "--size", "1", "--namespace", ns) as command:
        [started] = await command.ready()
        async with wool.WorkerPool(discovery=wool.LocalDiscovery(namespace=ns)):
            seen = await routines.chatty(5)
        command.send_signal(signal.SIGTERM)
        result = await command.finish()
    assert result.returncode == 0, result.stderr
    assert seen["pid"] == started.pid
    got = [(r.name, r.getMessage()) for r in kept.named("observe.other")]
    assert got == [("observe.other", "warning 5")]
    assert all(r.wool_worker == started.uid for r in kept.named("wool.worker.stdout"))
    assert "out 5" not in result.stderr and "Traceback" not in result.stderr


def test_a_pool_exits_without_tracebacks_and_prints_stay_prints(tmp_path):
    """With no logging set up, a routine's print() still shows in the caller's stdout."""
    result = _run_caller(
        tmp_path,
        "    async with wool.WorkerPool(size=2):\n"
        "        for x in range(3):\n"
        "            print('result', await routines.nest(x))\n",
    )
    out, err = result.stdout.splitlines(), result.stderr.splitlines()
    assert [line for line in out if line.startswith("result")] == ["result 0"] * 3
    assert out.count("printed at depth 0") == 3
    # Python's last-resort handler prints warnings when nothing else is set up.
    assert err.count("at depth 0") == 3 and err.count("entering depth 1") == 2
    assert set(err) == {"at depth 0", "entering depth 1", "entering depth 2"}, result.stderr


def test_a_pool_exits_without_tracebacks_even_at_debug_level(tmp_path):
    result = _run_caller(
        tmp_path,
        "    logging.basicConfig(level=logging.DEBUG)\n"
        "    async with wool.WorkerPool(size=2):\n"
        "        print('result', await routines.nest(1))\n"
        "        print('items', [i async for i in routines.stepping(2)])\n",
    )
    assert result.stdout.splitlines() == ["result 0", "items [0, 1]"]
    assert " DEBUG worker-" in result.stderr, "the workers log at DEBUG, as the caller set"
    assert "Traceback" not in result.stderr, result.stderr


def _run_caller(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` as the ``main()`` coroutine of a caller process of its own."""
    script = tmp_path / "caller.py"
    script.write_text(
        "import asyncio, logging\n"
        "import wool\n"
        "from tests.observe import routines\n"
        f"async def main():\n{body}"
        "asyncio.run(main())\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_forward_logs_takes_a_bool():
    with pytest.raises(TypeError, match="forward_logs must be True or False, got 'no'"):
        wool.WorkerPool(size=1, forward_logs="no")  # type: ignore[arg-type]
