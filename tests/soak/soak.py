"""The soak: wool under sustained load, with every outcome accounted for.

    python -m tests.soak.soak [--tasks 100000] [--concurrency 1000] [--pools 1000]
                              [--nested-pools 2000] [--fuzz 1000] [--json PATH]

1. tasks: ``--tasks`` calls through a pool of 2 workers, at most ``--concurrency`` in
   flight: coroutines that return, coroutines that raise, streams that end, streams that
   raise, coroutines cancelled while running, streams closed early and streams cancelled
   mid-step. Every outcome is checked against what was submitted. The RSS, open file
   descriptors and threads of the caller and both workers are taken after a warm-up and
   at the end, and must not grow beyond a margin.
2. pools: ``--pools`` pools opened and closed in a loop, each running a call: ephemeral
   and hybrid pools that spawn a worker, and durable pools that join a shared namespace
   (``--all-pools-spawn``: every pool spawns); no process, LocalDiscovery file,
   descriptor or thread may be left.
3. nested: one ``wool worker`` serves ``--nested-pools`` successive caller pools (a few
   at a time), each making nested calls through its proxy on the worker; every call
   must succeed, and the worker's threads, descriptors and RSS must stay within 10% of
   what they were after a warm-up.
4. fuzz: ``--fuzz`` hypothesis examples of random and mutated frames sent to a worker,
   which must stay alive and serving.

Prints a table and a JSON document of the figures; exits 1 if a check fails. Each phase
is bounded in time, so a hang fails the soak instead of stalling CI.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # before grpc is imported, here and in workers

import wool
from tests.reliability.support import ProcessStats, child_pids, wool_worker
from tests.soak import routines as r

FD_MARGIN = 5
THREAD_MARGIN = 2
RSS_GROWTH = 0.5
WARM_UP = 2_000

TASKS_SECONDS = 900.0
POOLS_SECONDS = 900.0
NESTED_SECONDS = 600.0
NESTED_WARM_UP = 1_000
"""Caller pools served before the worker's figures are taken: far more than the proxies a
worker keeps idle (the setting proxy_cache_size, 32), and enough for the worker's other
bounded tables to fill (its RSS grows by about 17 MB over the first 600 pools, then
moves up and down without a trend)."""
NESTED_CALLS = 3
NESTED_GROWTH = 0.10
NESTED_SAMPLE_EVERY = 100
"""Caller pools between two samples of the worker's figures. Its RSS rises and falls as
idle proxies expire and the allocator hands memory back (67 to 80 MB over 8,000 pools
here, with no trend), so one figure before and one after could differ by more than the
margin without any leak: the peaks of the samples are compared instead."""
FUZZ_SECONDS = 600.0

# kind: (weight, the outcome that must be observed)
KINDS: dict[str, tuple[int, str]] = {
    "value": (40, "returned"),
    "error": (10, "raised SoakError"),
    "stream": (15, "streamed to the end"),
    "stream-error": (5, "streamed, then raised SoakError"),
    "cancel": (10, "cancelled by the caller"),
    "stream-close": (10, "closed early"),
    "stream-cancel": (10, "cancelled mid-step"),
}


class Soak:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.submitted: collections.Counter[str] = collections.Counter()
        self.observed: collections.Counter[tuple[str, str]] = collections.Counter()
        self.surprises: list[str] = []
        self.peak_in_flight = 0
        self.peak_fds = 0

    def pick(self) -> str:
        kinds = list(KINDS)
        return self.random.choices(kinds, weights=[KINDS[k][0] for k in kinds])[0]

    async def run(self, number: int, kind: str) -> None:
        self.submitted[kind] += 1
        try:
            outcome = await self._run(number, kind)
        except BaseException as exc:  # anything else is a surprise, recorded, not raised
            outcome = f"unexpected {type(exc).__name__}"
            if len(self.surprises) < 20:
                self.surprises.append(f"{kind} #{number}: {type(exc).__name__}: {exc}")
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
        self.observed[(kind, outcome)] += 1

    async def _run(self, number: int, kind: str) -> str:
        if kind == "value":
            result = await r.work(number)
            return "returned" if result == number * 2 else f"wrong value {result!r}"
        if kind == "error":
            try:
                await r.fail(number)
            except r.SoakError as exc:
                return "raised SoakError" if exc.number == number else "wrong error"
            return "did not raise"
        if kind == "stream":
            n = self.random.randint(1, 5)
            items = [item async for item in r.stream(n)]
            return "streamed to the end" if items == list(range(n)) else f"wrong items {items}"
        if kind == "stream-error":
            n = self.random.randint(0, 3)
            items: list[int] = []
            try:
                async for item in r.stream_then_fail(n, number):
                    items.append(item)
            except r.SoakError as exc:
                if exc.number == number and items == list(range(n)):
                    return "streamed, then raised SoakError"
                return "wrong error or items"
            return "did not raise"
        if kind == "cancel":
            try:
                async with asyncio.timeout(self.random.uniform(0.0, 0.02)):
                    await r.block()
            except TimeoutError:
                return "cancelled by the caller"
            return "was not cancelled"
        if kind == "stream-close":
            take = self.random.randint(1, 3)
            stream = r.endless()
            items = [await anext(stream) for _ in range(take)]
            await stream.aclose()
            return "closed early" if items == list(range(take)) else f"wrong items {items}"
        if kind == "stream-cancel":
            stream = r.yield_then_block()
            try:
                if await anext(stream) != 0:
                    return "wrong first item"
                try:
                    async with asyncio.timeout(self.random.uniform(0.0, 0.02)):
                        await anext(stream)
                except TimeoutError:
                    return "cancelled mid-step"
                return "was not cancelled"
            finally:
                await stream.aclose()
        raise AssertionError(kind)

    def accounted(self) -> dict[str, dict[str, Any]]:
        table: dict[str, dict[str, Any]] = {}
        for kind, (_, expected) in KINDS.items():
            outcomes = {o: n for (k, o), n in self.observed.items() if k == kind}
            table[kind] = {
                "submitted": self.submitted[kind],
                "expected outcome": expected,
                "observed": outcomes,
                "accounted": outcomes.get(expected, 0) == self.submitted[kind]
                and sum(outcomes.values()) == self.submitted[kind],
            }
        return table


def stats(pids: dict[str, int]) -> dict[str, ProcessStats]:
    gc.collect()
    return {name: ProcessStats.of(pid) for name, pid in pids.items()}


def growth_problems(
    before: dict[str, ProcessStats], after: dict[str, ProcessStats], what: str
) -> list[str]:
    problems = []
    for name, start in before.items():
        end = after[name]
        if end.fds - start.fds > FD_MARGIN:
            problems.append(f"{what}: {name} open fds {start.fds} -> {end.fds}")
        if end.threads - start.threads > THREAD_MARGIN:
            problems.append(f"{what}: {name} threads {start.threads} -> {end.threads}")
        if end.rss_kib > start.rss_kib * (1 + RSS_GROWTH):
            problems.append(f"{what}: {name} RSS {start.rss_kib} -> {end.rss_kib} KiB")
    return problems


async def tasks_phase(args: argparse.Namespace, report: dict[str, Any]) -> list[str]:
    soak = Soak(args.seed)
    async with wool.WorkerPool(size=2) as pool:
        assert pool.proxy is not None
        proxy = pool.proxy
        pids = {"caller": os.getpid()}
        for i, worker in enumerate(pool.workers):
            assert worker.metadata is not None
            pids[f"worker {i + 1}"] = worker.metadata.pid
        slots = asyncio.Semaphore(args.concurrency)

        async def one(number: int, kind: str) -> None:
            try:
                await soak.run(number, kind)
            finally:
                soak.peak_in_flight = max(soak.peak_in_flight, proxy.in_flight)
                if number % 1000 == 0:
                    soak.peak_fds = max(soak.peak_fds, ProcessStats.of(os.getpid()).fds)
                slots.release()

        async def drive(count: int, first: int) -> None:
            running: set[asyncio.Task[None]] = set()
            for number in range(first, first + count):
                await slots.acquire()
                task = asyncio.ensure_future(one(number, soak.pick()))
                running.add(task)
                task.add_done_callback(running.discard)
            while running:
                await asyncio.gather(*list(running))

        await drive(WARM_UP, -WARM_UP)
        # The warm-up's outcomes are checked too, but not counted in the figures.
        problems = [f"warm-up: {s}" for s in soak.surprises]
        problems += [
            f"warm-up: {kind}: submitted {row['submitted']}, observed {row['observed']}"
            for kind, row in soak.accounted().items()
            if not row["accounted"]
        ]
        soak.submitted, soak.observed, soak.surprises = (
            collections.Counter(),
            collections.Counter(),
            [],
        )
        soak.peak_in_flight = 0
        before = stats(pids)
        started = time.monotonic()
        await drive(args.tasks, 0)
        duration = time.monotonic() - started
        after = stats(pids)
    accounted = soak.accounted()
    total = sum(soak.submitted.values())
    injected = total - soak.submitted["value"] - soak.submitted["stream"]
    report["tasks"] = {
        "submitted": total,
        "failures and cancellations injected": injected,
        "outcomes accounted for": sum(
            soak.observed[(k, KINDS[k][1])] for k in KINDS if accounted[k]["accounted"]
        ),
        "concurrency limit": args.concurrency,
        "peak in flight (proxy.in_flight)": soak.peak_in_flight,
        "peak caller fds": soak.peak_fds,
        "seconds": round(duration, 1),
        "tasks per second": round(total / duration) if duration else None,
        "by kind": accounted,
        "processes": {
            name: {"before": _as_dict(before[name]), "after": _as_dict(after[name])}
            for name in pids
        },
        "surprises": soak.surprises,
    }
    problems += [f"tasks: {s}" for s in soak.surprises]
    problems += [
        f"tasks: {kind}: submitted {row['submitted']}, observed {row['observed']}"
        for kind, row in accounted.items()
        if not row["accounted"]
    ]
    if total != args.tasks:
        problems.append(f"tasks: {total} submitted instead of {args.tasks}")
    problems += growth_problems(before, after, "tasks")
    return problems


def _peaks(samples: list[ProcessStats]) -> ProcessStats:
    """The highest of each figure over ``samples``."""
    return ProcessStats(
        rss_kib=max(s.rss_kib for s in samples),
        fds=max(s.fds for s in samples),
        threads=max(s.threads for s in samples),
    )


def _as_dict(s: ProcessStats) -> dict[str, int]:
    return {"rss_kib": s.rss_kib, "fds": s.fds, "threads": s.threads}


POOL_KINDS = ("ephemeral", "durable", "hybrid", "durable")
"""The kinds of pool the loop cycles through: half spawn a worker, half only join."""


async def pools_phase(args: argparse.Namespace, report: dict[str, Any]) -> list[str]:
    me = os.getpid()
    local_dir = Path(os.environ["WOOL_LOCAL_DIR"])
    shared = f"soak-{os.getpid()}"
    kinds: collections.Counter[str] = collections.Counter()

    async def one_pool(number: int) -> None:
        kind = POOL_KINDS[number % len(POOL_KINDS)] if args.mixed_pools else "ephemeral"
        if number >= 0:  # not a warm-up
            kinds[kind] += 1
        if kind == "ephemeral":
            pool = wool.WorkerPool(size=1)
        elif kind == "hybrid":
            pool = wool.WorkerPool(size=1, discovery=wool.LocalDiscovery(shared))
        else:
            pool = wool.WorkerPool(discovery=wool.LocalDiscovery(shared))
        async with pool:
            assert pool.proxy is not None
            assert await r.work(number) == number * 2

    # A pool that hosts a worker on the shared namespace for the durable pools to join.
    host = wool.WorkerPool(size=1, discovery=wool.LocalDiscovery(shared))
    await host.__aenter__()
    try:
        children = child_pids()
        problems = await _pool_loop(args, report, one_pool, me, local_dir, children)
    finally:
        await host.__aexit__(None, None, None)
    report["pools"]["kinds"] = dict(kinds)
    return problems


async def _pool_loop(
    args: argparse.Namespace,
    report: dict[str, Any],
    one_pool: Any,
    me: int,
    local_dir: Path,
    children_before: set[int],
) -> list[str]:
    for warm_up in range(-len(POOL_KINDS), 0):
        await one_pool(warm_up)
    before = stats({"caller": me})["caller"]
    files_before = await asyncio.to_thread(_listing, local_dir)
    slots = asyncio.Semaphore(args.pool_concurrency)
    failures: list[str] = []

    async def limited(number: int) -> None:
        async with slots:
            try:
                await one_pool(number)
            except Exception as exc:
                if len(failures) < 20:
                    failures.append(f"pool #{number}: {type(exc).__name__}: {exc}")

    started = time.monotonic()
    await asyncio.gather(*(limited(i) for i in range(args.pools)))
    duration = time.monotonic() - started
    after = await _threads_settled(me, before.threads + THREAD_MARGIN)
    left_processes = sorted(child_pids() - children_before)
    left_files = sorted(str(p) for p in await asyncio.to_thread(_listing, local_dir) - files_before)
    report["pools"] = {
        "opened and closed": args.pools,
        "failed": len(failures),
        "seconds": round(duration, 1),
        "caller": {"before": _as_dict(before), "after": _as_dict(after)},
        "processes left": left_processes,
        "files left": left_files,
        "failures": failures,
    }
    problems = [f"pools: {f}" for f in failures]
    if left_processes:
        problems.append(f"pools: processes left running: {left_processes}")
    if left_files:
        problems.append(f"pools: files left behind: {left_files}")
    problems += growth_problems({"caller": before}, {"caller": after}, "pools")
    return problems


async def _threads_settled(pid: int, bound: int, timeout: float = 60.0) -> ProcessStats:  # noqa: ASYNC109 (a soak's bounded wait)
    """The stats of ``pid`` once its threads are at most ``bound``, or after ``timeout``
    seconds. Threads on their way out (the watcher of a worker that just exited) end
    at once; gRPC's thread pool grows while pools open and close four at a time and
    retires idle threads some seconds later; a leaked thread never goes."""
    deadline = time.monotonic() + timeout
    while (now := stats({"caller": pid})["caller"]).threads > bound:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    return now


async def nested_phase(args: argparse.Namespace, report: dict[str, Any]) -> list[str]:
    namespace = f"soak-nested-{os.getpid()}"
    failures: list[str] = []
    calls = 0

    async def one_pool(number: int) -> None:
        nonlocal calls
        try:
            async with wool.WorkerPool(discovery=wool.LocalDiscovery(namespace)):
                for n in range(NESTED_CALLS):
                    value = number * NESTED_CALLS + n
                    result = await r.nested(value)
                    if result != value * 2 + 1:
                        raise AssertionError(f"nested({value}) returned {result!r}")
                    if number >= 0:
                        calls += 1
        except Exception as exc:
            if len(failures) < 20:
                failures.append(f"pool #{number}: {type(exc).__name__}: {exc}")

    async def serve(first: int, count: int) -> None:
        slots = asyncio.Semaphore(args.pool_concurrency)

        async def limited(number: int) -> None:
            async with slots:
                await one_pool(number)

        await asyncio.gather(*(limited(i) for i in range(first, first + count)))

    async def serve_sampled(first: int, count: int) -> list[ProcessStats]:
        samples: list[ProcessStats] = []
        for start in range(first, first + count, NESTED_SAMPLE_EVERY):
            await serve(start, min(NESTED_SAMPLE_EVERY, first + count - start))
            samples.append(stats(worker)["worker"])
        return samples

    async with wool_worker(namespace, "--size", "1") as pids:
        worker = {"worker": pids[0]}
        warm_up = await serve_sampled(-NESTED_WARM_UP, NESTED_WARM_UP)
        started = time.monotonic()
        measured = await serve_sampled(0, args.nested_pools)
        duration = time.monotonic() - started
    # The warm-up's second half, once the worker's bounded tables have filled.
    before = _peaks(warm_up[len(warm_up) // 2 :])
    after = _peaks(measured)
    report["nested"] = {
        "pools served": args.nested_pools,
        "warm-up pools": NESTED_WARM_UP,
        "nested calls": calls,
        "failed pools": len(failures),
        "seconds": round(duration, 1),
        "worker": {"before": _as_dict(before), "after": _as_dict(after)},
        "failures": failures,
    }
    problems = [f"nested: {f}" for f in failures]
    if calls != args.nested_pools * NESTED_CALLS:
        problems.append(f"nested: {calls} calls succeeded of {args.nested_pools * NESTED_CALLS}")
    for what, start, end in (
        ("threads", before.threads, after.threads),
        ("open fds", before.fds, after.fds),
        ("RSS KiB", before.rss_kib, after.rss_kib),
    ):
        if end > start * (1 + NESTED_GROWTH):
            problems.append(f"nested: the worker's {what} grew {start} -> {end}")
    return problems


def fuzz_phase(args: argparse.Namespace, report: dict[str, Any]) -> list[str]:
    from tests.reliability.fuzzing import run_fuzz

    wool_logger = logging.getLogger("wool")
    level = wool_logger.level
    wool_logger.setLevel(logging.ERROR)  # the worker inherits it: no warning per example
    started = time.monotonic()
    try:
        result = run_fuzz(args.fuzz)
    except Exception as exc:
        # Hypothesis wraps what failed (a FlakyFailure holds it): keep the whole story.
        story = "".join(traceback.format_exception(exc))
        print(story, file=sys.stderr, flush=True)
        report["fuzz"] = {"failed": f"{type(exc).__name__}: {exc}", "traceback": story[-4000:]}
        return [f"fuzz: {type(exc).__name__}: {exc}"]
    finally:
        wool_logger.setLevel(level)
    report["fuzz"] = {**result.as_dict(), "seconds": round(time.monotonic() - started, 1)}
    return []


def table(report: dict[str, Any]) -> str:
    lines = []
    tasks = report.get("tasks")
    if tasks:
        lines += [
            f"tasks: {tasks['submitted']} submitted in {tasks['seconds']} s "
            f"({tasks['tasks per second']}/s), {tasks['failures and cancellations injected']} "
            f"failures and cancellations injected, {tasks['outcomes accounted for']} outcomes "
            f"accounted for; peak in flight {tasks['peak in flight (proxy.in_flight)']} "
            f"(limit {tasks['concurrency limit']})",
            "",
            f"{'kind':<14}{'submitted':>10}  {'expected outcome':<32}{'observed':>9}  ok",
        ]
        for kind, row in tasks["by kind"].items():
            seen = row["observed"].get(row["expected outcome"], 0)
            lines.append(
                f"{kind:<14}{row['submitted']:>10}  {row['expected outcome']:<32}{seen:>9}  "
                f"{'yes' if row['accounted'] else 'NO'}"
            )
        lines += [
            "",
            f"{'process':<10}{'RSS KiB before':>15}{'after':>10}{'fds before':>12}{'after':>7}"
            f"{'threads before':>16}{'after':>7}",
        ]
        for name, row in tasks["processes"].items():
            b, a = row["before"], row["after"]
            lines.append(
                f"{name:<10}{b['rss_kib']:>15}{a['rss_kib']:>10}{b['fds']:>12}{a['fds']:>7}"
                f"{b['threads']:>16}{a['threads']:>7}"
            )
    pools = report.get("pools")
    if pools:
        b, a = pools["caller"]["before"], pools["caller"]["after"]
        lines += [
            "",
            f"pools: {pools['opened and closed']} opened and closed in {pools['seconds']} s, "
            f"{pools['failed']} failed; caller fds {b['fds']} -> {a['fds']}, threads "
            f"{b['threads']} -> {a['threads']}, RSS {b['rss_kib']} -> {a['rss_kib']} KiB; "
            f"processes left {len(pools['processes left'])}, files left "
            f"{len(pools['files left'])}",
        ]
    nested = report.get("nested")
    if nested:
        b, a = nested["worker"]["before"], nested["worker"]["after"]
        lines += [
            "",
            f"nested: one worker served {nested['pools served']} caller pools (after "
            f"{nested['warm-up pools']} to warm up) in {nested['seconds']} s, "
            f"{nested['nested calls']} nested calls, {nested['failed pools']} pools failed; "
            f"worker peaks (warm-up's second half -> run) threads {b['threads']} -> "
            f"{a['threads']}, fds {b['fds']} -> {a['fds']}, "
            f"RSS {b['rss_kib']} -> {a['rss_kib']} KiB",
        ]
    fuzz = report.get("fuzz")
    if fuzz:
        lines += ["", f"fuzz: {fuzz}"]
    lines += ["", f"total {report['seconds']} s; problems: {len(report['problems'])}"]
    lines += [f"  - {p}" for p in report["problems"]]
    return "\n".join(lines)


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"arguments": vars(args).copy()}
    problems: list[str] = []
    started = time.monotonic()
    if args.tasks:
        try:
            async with asyncio.timeout(TASKS_SECONDS):
                problems += await tasks_phase(args, report)
        except TimeoutError:
            problems.append(f"tasks: did not finish within {TASKS_SECONDS:g} s")
    if args.pools:
        try:
            async with asyncio.timeout(POOLS_SECONDS):
                problems += await pools_phase(args, report)
        except TimeoutError:
            problems.append(f"pools: did not finish within {POOLS_SECONDS:g} s")
    if args.nested_pools:
        try:
            async with asyncio.timeout(NESTED_SECONDS):
                problems += await nested_phase(args, report)
        except TimeoutError:
            problems.append(f"nested: did not finish within {NESTED_SECONDS:g} s")
    if args.fuzz:
        problems += await asyncio.to_thread(fuzz_phase, args, report)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["problems"] = problems
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak.soak", description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=1_000)
    parser.add_argument("--pools", type=int, default=1_000)
    parser.add_argument("--pool-concurrency", type=int, default=4)
    parser.add_argument(
        "--all-pools-spawn",
        dest="mixed_pools",
        action="store_false",
        help="every pool spawns a worker (by default half of them join a shared namespace)",
    )
    parser.add_argument(
        "--nested-pools",
        type=int,
        default=2_000,
        help="caller pools one `wool worker` serves, each making nested calls",
    )
    parser.add_argument("--fuzz", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    own_dir = "WOOL_LOCAL_DIR" not in os.environ
    if own_dir:
        shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
        os.environ["WOOL_LOCAL_DIR"] = tempfile.mkdtemp(prefix="woolsoak-", dir=shm)
    local_dir = Path(os.environ["WOOL_LOCAL_DIR"])
    files_before = set(local_dir.iterdir())
    try:
        report = asyncio.run(soak(args))
        left = sorted(str(p) for p in set(local_dir.iterdir()) - files_before)
        if left:
            report["problems"].append(f"files left behind: {left}")
        if child_pids():
            report["problems"].append(f"processes left running: {sorted(child_pids())}")
    finally:
        if own_dir:
            shutil.rmtree(local_dir, ignore_errors=True)
    print(table(report))
    document = json.dumps(report, default=str)
    print(f"SOAK JSON {document}")
    if args.json:
        args.json.write_text(document)
    return 1 if report["problems"] else 0


def _listing(folder: Path) -> set[Path]:
    """The entries of ``folder`` (read off the event loop)."""
    return set(folder.iterdir())


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
