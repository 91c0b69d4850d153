"""The benchmark runner: ``python -m bench [--quick] [--json PATH] [--markdown PATH]``.

One process runs every workload against wool and its baselines in the same layout (two
worker processes each): a ``wool.WorkerPool(size=2)``, a ``ProcessPoolExecutor(2)`` used
through ``loop.run_in_executor``, and two raw ``grpc.aio`` servers (bench/raw_grpc.py).
The three stay up for the whole run; the suite makes ``--repeats`` rounds, and every round
measures every workload on every backend, in an order rotated from round to round, so
drift on a shared machine spreads over all of them. The table shows, per metric and
backend, the median over the rounds, the min-max spread, and the ratio of wool to that
backend, next to the targets of issue 6. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import importlib.util
import json
import multiprocessing
import os
import pickle
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # workers import bench.workloads by name
    sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

import wool  # noqa: E402
from bench import discovery_probe, raw_grpc, raw_socket, workloads  # noqa: E402
from bench.probes import bench_env, run_probe  # noqa: E402
from bench.stats import percentile, summary  # noqa: E402
from wool._task import current_proxy  # noqa: E402

# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    repeats: int = 5
    latency_calls: int = 2_000
    throughput_tasks: int = 20_000
    grpc_inflight: int = 512
    stream_items: int = 100_000
    payload_bytes: int = 10_000_000
    payload_calls: int = 10
    repeated_bytes: int = 50_000_000
    repeated_calls: int = 10
    scale_calls: int = 200_000
    scale_small_calls: int = 20_000
    scale_cap: float = 60.0
    """Enough for 200,000 calls to finish: the rate then covers the whole burst."""
    fib_n: int = 15
    event_calls: int = 2_000
    spin_scale: float = 1.0
    """Task lengths of skewed, exponential and two_callers (1.0: those of issue 13)."""
    exponential_tasks: int = 200
    block_seconds: float = 2.0
    blocked_calls: int = 100
    cap: float = 10.0
    """Soft limit of one measurement, seconds: a run past it stops and reports its rate."""
    nested_cap: float = 60.0
    budget: float = 450.0
    """Seconds for all rounds: a round that would not fit is skipped (and noted)."""
    quick: bool = False


FULL = Config()
QUICK = Config(
    repeats=2,
    latency_calls=200,
    throughput_tasks=1_000,
    grpc_inflight=512,
    stream_items=2_000,
    payload_bytes=1_000_000,
    payload_calls=2,
    repeated_bytes=5_000_000,
    repeated_calls=2,
    scale_calls=20_000,
    scale_small_calls=2_000,
    scale_cap=5.0,
    fib_n=10,
    event_calls=200,
    spin_scale=0.2,
    exponential_tasks=50,
    block_seconds=0.5,
    blocked_calls=20,
    cap=5.0,
    nested_cap=20.0,
    budget=45.0,
    quick=True,
)
HARD_MARGIN = 60.0  # a measurement still running cap + this seconds later is cancelled
SPAWN = multiprocessing.get_context("spawn")

# --- what is measured -----------------------------------------------------------------------

PREFETCH_DEPTH = 64
"""The read-ahead of the prefetch workload (``wool.prefetch(gen, PREFETCH_DEPTH)``)."""

BACKENDS = {
    "wool": "wool",
    "wool_tcp": "wool, TCP 127.0.0.1",
    "ppe": "ProcessPoolExecutor(2)",
    "grpc": "raw gRPC unary",
    "grpc_bytes": "raw gRPC unary, bytes as is",
    "grpc_exchange": "raw gRPC bidi, one reply, unix socket",
    "grpc_session": "raw gRPC bidi, accepted + result, unix socket",
    "sock_session": "plain unix socket (no gRPC), accepted + result",
    "importable": "wool, importable routine",
    "wool_small": "wool, 20,000 calls",
    "ppe_scale": "ProcessPoolExecutor(2), 200,000 calls",
    "grpc_pull": "raw gRPC bidi pull",
    "grpc_pull_unix": "raw gRPC bidi pull, unix socket",
    "grpc_push": "raw gRPC server push",
    "sock_pull": "plain unix socket (no gRPC) pull",
    "grpc_push_unix": "raw gRPC server push, unix socket",
    "wool_prefetch": f"wool.prefetch(gen, {PREFETCH_DEPTH})",
    "none": "wool, no handler",
    "noop": "wool, 1 no-op handler",
    "sleep": "wool, 1 handler sleeping 1 ms",
    "otel": "wool, wool-opentelemetry, no SDK",
    "uvloop": "wool, WOOL_LOOP=uvloop, no handler",
    "local": "LocalDiscovery",
    "etcd": "EtcdDiscovery (TTL 5 s)",
    "wool_lb": "wool, leastbusy",
    "wool_rr": "wool, round-robin",
    "wool_lb1": "wool, leastbusy, concurrency=1",
    "wool_lb1s": "wool, leastbusy, concurrency=1, standby",
    "ideal": "ideal (the work / 2 workers)",
}
LEASTBUSY_POOLS = {
    "wool_lb": {"loadbalancer": "leastbusy"},
    "wool_lb1": {"loadbalancer": "leastbusy", "concurrency": 1},
    "wool_lb1s": {"loadbalancer": "leastbusy", "concurrency": 1, "standby": True},
}


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    better: str  # "lower" or "higher"


@dataclass(frozen=True)
class Workload:
    name: str
    metrics: tuple[Metric, ...]
    backends: tuple[str, ...]
    subject: str  # ratios are subject / backend ...
    per_reference: bool = False  # ... or backend / subject (events: handler / no handler)
    unavailable: dict[str, str] = field(default_factory=dict)  # backend -> why not
    max_rounds: int | None = None  # measured in the first rounds only (slow workloads)


LATENCY_METRICS = (
    Metric("p50_us", "p50 per call", "us", "lower"),
    Metric("p99_us", "p99 per call", "us", "lower"),
)
WALL = (Metric("wall_s", "wall time", "s", "lower"),)
UVLOOP = importlib.util.find_spec("uvloop") is not None
"""Whether the optional event loop (``wool[uvloop]``) can be measured."""
WORKLOADS = (
    Workload(
        "startup",
        (
            Metric("first_result_s", "enter to 1st result", "s", "lower"),
            Metric("teardown_s", "teardown", "s", "lower"),
        ),
        ("wool", "ppe"),
        "wool",
    ),
    Workload(
        "latency",
        LATENCY_METRICS,
        ("wool", "wool_tcp", "ppe", "grpc", "grpc_exchange", "grpc_session", "sock_session"),
        "wool",
    ),
    Workload(
        "throughput",
        (Metric("tasks_per_s", "tasks per second", "/s", "higher"),),
        ("wool", "ppe", "grpc"),
        "wool",
    ),
    # the two balancers side by side, each in a pool opened for the measurement
    Workload("lb_latency", LATENCY_METRICS, ("wool_lb", "wool_rr"), "wool_lb"),
    Workload(
        "lb_throughput",
        (Metric("tasks_per_s", "tasks per second", "/s", "higher"),),
        ("wool_lb", "wool_rr"),
        "wool_lb",
    ),
    Workload(
        "streaming",
        (Metric("items_per_s", "items per second", "/s", "higher"),),
        ("wool", "grpc_pull", "grpc_pull_unix", "grpc_push", "sock_pull"),
        "wool",
        unavailable={"ppe": "n/a: an executor cannot stream a generator"},
    ),
    Workload(
        "prefetch",
        (Metric("items_per_s", "items per second", "/s", "higher"),),
        ("wool_prefetch", "grpc_push", "grpc_push_unix"),
        "wool_prefetch",
    ),
    Workload(
        "payload",
        (Metric("mb_per_s", "MB per second", "MB/s", "higher"),),
        ("wool", "ppe", "grpc_bytes", "grpc"),
        "wool",
    ),
    Workload(
        "result",
        (Metric("mb_per_s", "MB per second", "MB/s", "higher"),),
        ("wool", "ppe", "grpc_bytes", "grpc"),
        "wool",
    ),
    Workload(
        "repeated",
        (Metric("mb_per_s", "MB per second", "MB/s", "higher"),),
        ("wool", "ppe", "grpc_bytes"),
        "wool",
    ),
    Workload(
        "scale",
        (
            Metric("tasks_per_s", "tasks per second", "/s", "higher"),
            Metric("kb_per_call", "caller peak RSS per call", "kB", "lower"),
        ),
        ("wool", "wool_small", "ppe_scale"),
        "wool",
        max_rounds=2,
    ),
    Workload(
        "script",
        (Metric("tasks_per_s", "tasks per second", "/s", "higher"),),
        ("wool", "importable"),
        "wool",
    ),
    Workload(
        "nested",
        (
            Metric("wall_s", "wall time", "s", "lower"),
            Metric("calls_per_s", "calls per second", "/s", "higher"),
        ),
        ("wool",),
        "wool",
        unavailable={
            "ppe": "n/a: executor tasks cannot submit to their own pool",
            "grpc": "no baseline (wool only)",
        },
    ),
    Workload(
        "events",
        LATENCY_METRICS,
        ("none", "noop", "sleep", "otel", *(("uvloop",) if UVLOOP else ())),
        "none",
        per_reference=True,
        unavailable={} if UVLOOP else {"uvloop": "skipped: uvloop is not installed"},
    ),
    Workload(
        "discovery",
        (
            Metric("start_to_event_ms", "worker start to event", "ms", "lower"),
            Metric("publish_to_event_ms", "publish to event", "ms", "lower"),
            Metric("kill_to_drop_s", "SIGKILL to dropped", "s", "lower"),
        ),
        ("local", "etcd"),
        "local",
        per_reference=True,
    ),
    Workload("skewed", WALL, ("wool_lb1", "ppe", "wool_lb1s", "wool"), "wool_lb1"),
    Workload("exponential", WALL, ("wool_lb1", "ppe", "wool_lb1s", "wool"), "wool_lb1"),
    Workload(
        "blocked",
        (*LATENCY_METRICS, Metric("max_us", "slowest call", "us", "lower")),
        ("wool_lb", "wool"),
        "wool_lb",
    ),
    Workload("two_callers", WALL, ("wool_lb1", "ideal"), "wool_lb1"),
)
WORKLOAD_NAMES = tuple(w.name for w in WORKLOADS)


@dataclass(frozen=True)
class Target:
    workload: str
    metric: str
    backend: str  # the row the target is shown on
    kind: str  # "ratio" (the row's ratio) or "absolute" (the row's median)
    op: str  # "<=", "<" or ">="
    threshold: float
    text: str
    source: str = "issue 6"

    def check(self, value: float | None) -> bool | None:
        if value is None:
            return None
        if self.op == "<=":
            return value <= self.threshold
        if self.op == "<":
            return value < self.threshold
        return value >= self.threshold


TARGETS = (
    Target("startup", "first_result_s", "wool", "absolute", "<", 1.0, "< 1 s"),
    Target("startup", "teardown_s", "wool", "absolute", "<", 0.5, "< 0.5 s"),
    Target("latency", "p50_us", "grpc", "ratio", "<=", 1.3, "<= 1.3x"),
    Target("latency", "p50_us", "ppe", "ratio", "<=", 1.5, "<= 1.5x", "issue 15"),
    Target("throughput", "tasks_per_s", "grpc", "ratio", ">=", 1.5, ">= 1.5x"),
    Target("throughput", "tasks_per_s", "ppe", "ratio", ">=", 1.0, ">= 1.0x"),
    Target("streaming", "items_per_s", "grpc_pull", "ratio", ">=", 1.0, ">= 1.0x", "issue 15"),
    Target("streaming", "items_per_s", "grpc_pull_unix", "ratio", ">=", 1.0, ">= 1.0x", "issue 15"),
    Target("prefetch", "items_per_s", "grpc_push", "ratio", ">=", 0.5, ">= 0.5x", "issue 15"),
    Target("prefetch", "items_per_s", "grpc_push_unix", "ratio", ">=", 0.5, ">= 0.5x", "issue 15"),
    Target("payload", "mb_per_s", "grpc_bytes", "ratio", ">=", 0.8, ">= 0.8x", "issue 15"),
    Target("result", "mb_per_s", "grpc_bytes", "ratio", ">=", 0.8, ">= 0.8x", "issue 15"),
    # "5x faster than today": today, the bytes travelled with every call, as the floor does
    Target("repeated", "mb_per_s", "grpc_bytes", "ratio", ">=", 5.0, ">= 5x", "issue 15"),
    Target("script", "tasks_per_s", "importable", "ratio", ">=", 0.9, ">= 0.9x", "issue 15"),
    Target("scale", "tasks_per_s", "wool_small", "ratio", ">=", 0.9, ">= 0.9x", "issue 15"),
    Target("scale", "kb_per_call", "ppe_scale", "ratio", "<=", 1.0, "<= 1.0x", "issue 15"),
    Target("nested", "wall_s", "wool", "absolute", "<", 5.0, "< 5 s"),
    Target("events", "p50_us", "noop", "ratio", "<", 1.05, "< 1.05x"),
    Target("events", "p50_us", "sleep", "ratio", "<", 2.0, "< 2x", source="suite"),
    Target("events", "p50_us", "otel", "ratio", "<", 1.03, "< 1.03x", source="issue 14"),
    Target("discovery", "kill_to_drop_s", "etcd", "absolute", "<", 6.0, "< TTL+1 s", "issue 16"),
    # issue 13; a ratio is the subject (leastbusy) over the row
    Target("lb_latency", "p50_us", "wool_rr", "ratio", "<=", 1.05, "<= 1.05x", "issue 13"),
    Target("lb_throughput", "tasks_per_s", "wool_rr", "ratio", ">=", 0.95, ">= 0.95x", "issue 13"),
    Target("skewed", "wall_s", "ppe", "ratio", "<=", 1.1, "<= 1.1x", "issue 13"),
    Target("exponential", "wall_s", "ppe", "ratio", "<=", 1.05, "<= 1.05x", "issue 13"),
    Target("blocked", "p99_us", "wool_lb", "absolute", "<", 50_000, "< 50 ms", "issue 13"),
    Target("two_callers", "wall_s", "ideal", "ratio", "<=", 1.2, "<= 1.2x", "issue 13"),
)

# --- one measurement ------------------------------------------------------------------------


@dataclass
class Run:
    values: dict[str, float] = field(default_factory=dict)
    count: int = 0  # calls, tasks or items completed
    elapsed: float = 0.0
    capped: bool = False
    error: str | None = None


class Backends:
    """The long-lived side of the run: a wool pool, an executor, two raw gRPC servers."""

    def __init__(self, config: Config, needed: frozenset[str] = frozenset()) -> None:
        self.config = config
        self.needed = needed
        self.pools: dict[str, wool.WorkerPool] = {}
        self.durable: DurableWorkers | None = None
        self.stack = contextlib.AsyncExitStack()
        self.ppe: ProcessPoolExecutor | None = None
        self.raw: raw_grpc.RawCluster | None = None
        self.sock: raw_socket.SocketCluster | None = None
        self.tcp_pool: wool.WorkerPool | None = None
        self.payload = os.urandom(config.payload_bytes)
        self.repeated = os.urandom(config.repeated_bytes)
        self.fresh = 0

    async def __aenter__(self) -> Backends:
        try:
            # Pools entered here first; the round-robin pool, entered last, is the current one.
            for name, options in LEASTBUSY_POOLS.items():
                if name in self.needed:
                    pool = wool.WorkerPool(size=2, **options)
                    self.pools[name] = await self.stack.enter_async_context(pool)
            if "two_callers" in self.needed:
                self.durable = await self.stack.enter_async_context(DurableWorkers())
            # entered first, so that the default pool below is the one routines dispatch to
            self.tcp_pool = wool.WorkerPool(size=2, host="127.0.0.1")
            await self.stack.enter_async_context(self.tcp_pool)
            await self.stack.enter_async_context(wool.WorkerPool(size=2))
            self.ppe = ProcessPoolExecutor(2, mp_context=SPAWN)
            self.stack.callback(self.ppe.shutdown, wait=True, cancel_futures=True)
            loop = asyncio.get_running_loop()
            # Both executor workers are spawned on demand: make them exist now.
            await asyncio.gather(*(loop.run_in_executor(self.ppe, _pause) for _ in range(2)))
            self.raw = await self.stack.enter_async_context(raw_grpc.RawCluster(2))
            self.sock = await self.stack.enter_async_context(raw_socket.SocketCluster(2))
        except BaseException:
            await self.stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stack.aclose()

    async def within(self, pool: str, coroutine: Coroutine[Any, Any, Run]) -> Run:
        """Run ``coroutine`` with ``pool`` (a LEASTBUSY_POOLS name) as the current pool.

        In the measurement's own task, as the default pool's rows run: a task of its own
        with a context copied when the pool was entered made the same round-robin pool
        measure 1.28x slower in throughput than the default pool.
        """
        proxy = self.pools[pool].proxy
        assert proxy is not None
        current_proxy.set(proxy)  # the measurement runs in a task of its own
        return await coroutine

    def executor(self, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        assert self.ppe is not None
        return asyncio.get_running_loop().run_in_executor(self.ppe, fn, *args)


def _pause() -> None:
    time.sleep(0.05)


class DurableWorkers:
    """``wool worker --size 2 --concurrency 1`` in a namespace of its own (two_callers)."""

    def __init__(self) -> None:
        self.namespace = f"bench-{os.getpid()}"
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> DurableWorkers:
        self.process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "wool", "worker", "--size", "2", "--concurrency", "1"),
            *("--namespace", self.namespace),
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=bench_env(),
        )
        assert self.process.stdout is not None
        async with asyncio.timeout(60):
            while not (await self.process.stdout.readline()).startswith(b"ready"):
                if self.process.stdout.at_eof():
                    raise RuntimeError("wool worker exited before it was ready")
        return self

    async def __aexit__(self, *exc: object) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(30):
                await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()


async def sequential(call: Callable[[], Awaitable[Any]], n: int, cap: float) -> Run:
    samples: list[float] = []
    deadline = time.perf_counter() + cap
    started = time.perf_counter()
    for _ in range(n):
        start = time.perf_counter()
        await call()
        end = time.perf_counter()
        samples.append(end - start)
        if end > deadline:
            break
    run = Run(count=len(samples), elapsed=time.perf_counter() - started)
    run.capped = len(samples) < n
    samples.sort()
    run.values = {"p50_us": percentile(samples, 50) * 1e6, "p99_us": percentile(samples, 99) * 1e6}
    return run


async def concurrent(make: Callable[[], Awaitable[Any]], n: int, cap: float) -> Run:
    """Submit ``n`` calls at once and wait for all (like ``asyncio.gather``), for ``cap`` s."""
    start = time.perf_counter()
    tasks = [asyncio.ensure_future(make()) for _ in range(n)]
    done, pending = await asyncio.wait(tasks, timeout=cap)
    elapsed = time.perf_counter() - start
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=HARD_MARGIN)
    failed = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} of {n} calls failed, first: {failed[0]!r}")
    return Run({"tasks_per_s": len(done) / elapsed}, len(done), elapsed, bool(pending))


async def bounded(semaphore: asyncio.Semaphore, call: Callable[[], Awaitable[Any]]) -> Any:
    async with semaphore:
        return await call()


async def stream_rate(items: Any, n: int, cap: float, start: float) -> Run:
    """Consume an async iterator of ``0 .. n-1`` for at most ``cap`` seconds."""
    count, last, capped = 0, -1, False
    deadline = start + cap
    async for item in items:
        last = item
        count += 1
        if count & 255 == 0 and time.perf_counter() > deadline:
            capped = True
            break
    elapsed = time.perf_counter() - start
    if not capped and (count != n or last != n - 1):
        raise RuntimeError(f"stream ended after {count} items (last {last}), expected {n}")
    return Run({"items_per_s": count / elapsed}, count, elapsed, capped)


class Measure:
    """``measure(workload, backend)`` runs one measurement of the suite."""

    def __init__(self, backends: Backends, config: Config) -> None:
        self.b = backends
        self.c = config

    async def run(self, workload: str, backend: str, warmup: bool = False) -> Run:
        fn = getattr(self, f"{workload}_{backend}")
        cap = workload_cap(self.c, workload)
        limit = cap + HARD_MARGIN
        gc.collect()
        try:
            async with asyncio.timeout(limit):
                return await fn(warmup)
        except TimeoutError:
            return Run(error=f"did not finish in {limit:.0f} s")
        except Exception as exc:
            text = " ".join(f"{type(exc).__name__}: {exc}".split())
            return Run(error=text[:300])

    # startup: a fresh pool / executor each time, in a task of its own (context variables)

    async def startup_wool(self, warmup: bool) -> Run:
        start = time.perf_counter()
        pool = wool.WorkerPool(size=2)
        await pool.__aenter__()
        try:
            await workloads.nop()
            first = time.perf_counter()
        finally:
            teardown_start = time.perf_counter()
            await pool.__aexit__(None, None, None)
            end = time.perf_counter()
        return Run(
            {"first_result_s": first - start, "teardown_s": end - teardown_start}, 1, end - start
        )

    async def startup_ppe(self, warmup: bool) -> Run:
        start = time.perf_counter()
        ppe = ProcessPoolExecutor(2, mp_context=SPAWN)
        try:
            await asyncio.get_running_loop().run_in_executor(ppe, workloads.nop_sync)
            first = time.perf_counter()
        finally:
            teardown_start = time.perf_counter()
            ppe.shutdown(wait=True)
            end = time.perf_counter()
        return Run(
            {"first_result_s": first - start, "teardown_s": end - teardown_start}, 1, end - start
        )

    # latency: sequential awaits of the trivial call

    def _calls(self, warmup: bool) -> int:
        return max(50, self.c.latency_calls // 10) if warmup else self.c.latency_calls

    async def latency_wool(self, warmup: bool) -> Run:
        return await sequential(workloads.nop, self._calls(warmup), self.c.cap)

    async def latency_wool_tcp(self, warmup: bool) -> Run:
        """The same calls through a pool whose workers listen on TCP 127.0.0.1 instead of
        the default unix sockets."""
        assert self.b.tcp_pool is not None and self.b.tcp_pool.proxy is not None
        current_proxy.set(self.b.tcp_pool.proxy)  # this measurement's task only
        return await sequential(workloads.nop, self._calls(warmup), self.c.cap)

    async def latency_ppe(self, warmup: bool) -> Run:
        return await sequential(
            lambda: self.b.executor(workloads.nop_sync), self._calls(warmup), self.c.cap
        )

    async def latency_grpc(self, warmup: bool) -> Run:
        raw = self.b.raw
        assert raw is not None
        return await sequential(
            lambda: raw.call(workloads.nop_plain), self._calls(warmup), self.c.cap
        )

    async def latency_grpc_exchange(self, warmup: bool) -> Run:
        """A persistent stream, one message each way per call: what a session costs."""
        raw = self.b.raw
        assert raw is not None
        return await sequential(
            lambda: raw.exchange(workloads.nop_plain), self._calls(warmup), self.c.cap
        )

    async def latency_grpc_session(self, warmup: bool) -> Run:
        """A persistent stream answering ``accepted`` before the result, as wool does: the
        floor of wool's protocol on this transport."""
        raw = self.b.raw
        assert raw is not None
        return await sequential(
            lambda: raw.session(workloads.nop_plain), self._calls(warmup), self.c.cap
        )

    async def latency_sock_session(self, warmup: bool) -> Run:
        """The same exchange on a plain unix socket: what the protocol costs without gRPC."""
        sock = self.b.sock
        assert sock is not None
        return await sequential(
            lambda: sock.session(workloads.nop_plain), self._calls(warmup), self.c.cap
        )

    # throughput: every task submitted at once

    def _tasks(self, warmup: bool) -> int:
        return max(100, self.c.throughput_tasks // 20) if warmup else self.c.throughput_tasks

    async def throughput_wool(self, warmup: bool) -> Run:
        return await concurrent(workloads.nop, self._tasks(warmup), self.c.cap)

    async def throughput_ppe(self, warmup: bool) -> Run:
        return await concurrent(
            lambda: self.b.executor(workloads.nop_sync), self._tasks(warmup), self.c.cap
        )

    async def throughput_grpc(self, warmup: bool) -> Run:
        raw = self.b.raw
        assert raw is not None
        semaphore = asyncio.Semaphore(self.c.grpc_inflight)
        return await concurrent(
            lambda: bounded(semaphore, lambda: raw.call(workloads.nop_plain)),
            self._tasks(warmup),
            self.c.cap,
        )

    # streaming: one generator, pulled item by item (push: for reference)

    def _items(self, warmup: bool) -> int:
        return max(500, self.c.stream_items // 50) if warmup else self.c.stream_items

    async def streaming_wool(self, warmup: bool) -> Run:
        n = self._items(warmup)
        start = time.perf_counter()
        generator = workloads.count_up(n)
        try:
            return await stream_rate(generator, n, self.c.cap, start)
        finally:
            await generator.aclose()

    async def streaming_grpc_pull(self, warmup: bool, unix: bool = False) -> Run:
        raw = self.b.raw
        assert raw is not None
        n = self._items(warmup)
        start = time.perf_counter()
        call = (raw.pull_unix if unix else raw.pull)[raw.pick()]()

        async def items() -> Any:
            await call.write(raw_grpc.encode_call(workloads.count_up_plain, n))
            while True:
                reply = await call.read()
                if reply is grpc.aio.EOF or reply == raw_grpc.END:
                    return
                yield pickle.loads(reply)
                await call.write(b"n")

        replies = items()
        try:
            return await stream_rate(replies, n, self.c.cap, start)
        finally:
            await replies.aclose()
            call.cancel()

    async def streaming_grpc_pull_unix(self, warmup: bool) -> Run:
        """The same floor over a unix socket, the transport wool's workers use by default."""
        return await self.streaming_grpc_pull(warmup, unix=True)

    async def streaming_grpc_push(self, warmup: bool, unix: bool = False) -> Run:
        raw = self.b.raw
        assert raw is not None
        n = self._items(warmup)
        start = time.perf_counter()
        encoded = raw_grpc.encode_call(workloads.count_up_plain, n)
        call = (raw.push_unix if unix else raw.push)[raw.pick()](encoded)

        async def items() -> Any:
            async for reply in call:
                yield pickle.loads(reply)

        replies = items()
        try:
            return await stream_rate(replies, n, self.c.cap, start)
        finally:
            await replies.aclose()
            call.cancel()

    async def streaming_sock_pull(self, warmup: bool) -> Run:
        """Pull semantics on a plain unix socket: what a step costs without gRPC."""
        sock = self.b.sock
        assert sock is not None
        n = self._items(warmup)
        start = time.perf_counter()
        replies = sock.pull(workloads.count_up_plain, n)
        try:
            return await stream_rate(replies, n, self.c.cap, start)
        finally:
            await replies.aclose()

    # prefetch: the same generator read ahead, against the server pushing every item

    async def prefetch_wool_prefetch(self, warmup: bool) -> Run:
        n = self._items(warmup)
        start = time.perf_counter()
        generator = wool.prefetch(workloads.count_up(n), PREFETCH_DEPTH)
        try:
            return await stream_rate(generator, n, self.c.cap, start)
        finally:
            await generator.aclose()

    async def prefetch_grpc_push(self, warmup: bool) -> Run:
        return await self.streaming_grpc_push(warmup)

    async def prefetch_grpc_push_unix(self, warmup: bool) -> Run:
        return await self.streaming_grpc_push(warmup, unix=True)

    # payload: a big bytes argument in, its length out

    def _fresh_payloads(self, calls: int) -> list[bytes]:
        """``calls`` distinct payloads, never sent before (wool keeps what it sent)."""
        base = self.b.payload
        payloads = []
        for _ in range(calls):
            self.b.fresh += 1
            payloads.append(self.b.fresh.to_bytes(8, "little") + base[8:])
        return payloads

    async def _payload(
        self,
        call: Callable[[bytes], Awaitable[int]],
        warmup: bool,
        payloads: list[bytes] | None = None,
    ) -> Run:
        calls = 1 if warmup else self.c.payload_calls
        if payloads is None:
            payloads = self._fresh_payloads(calls)
        calls = len(payloads)
        data = payloads[0]
        deadline = time.perf_counter() + self.c.cap
        start = time.perf_counter()
        done = 0
        for data in payloads:
            result = await call(data)
            if result != len(data):
                raise RuntimeError(f"payload came back as {result}, expected {len(data)}")
            done += 1
            if time.perf_counter() > deadline:
                break
        elapsed = time.perf_counter() - start
        mb_per_s = done * len(data) / 1e6 / elapsed
        return Run({"mb_per_s": mb_per_s}, done, elapsed, done < calls)

    async def payload_wool(self, warmup: bool) -> Run:
        return await self._payload(workloads.length, warmup)

    async def payload_ppe(self, warmup: bool) -> Run:
        return await self._payload(lambda d: self.b.executor(workloads.length_sync, d), warmup)

    async def payload_grpc(self, warmup: bool) -> Run:
        raw = self.b.raw
        assert raw is not None
        return await self._payload(lambda d: raw.call(workloads.length_plain, d), warmup)

    async def payload_grpc_bytes(self, warmup: bool) -> Run:
        raw = self.b.raw
        assert raw is not None
        return await self._payload(raw.length, warmup)

    # repeated: the same big bytes argument, call after call

    def _repeated(self, warmup: bool) -> list[bytes]:
        return [self.b.repeated] * (1 if warmup else self.c.repeated_calls)

    async def repeated_wool(self, warmup: bool) -> Run:
        return await self._payload(workloads.length, warmup, self._repeated(warmup))

    async def repeated_ppe(self, warmup: bool) -> Run:
        call = lambda d: self.b.executor(workloads.length_sync, d)  # noqa: E731
        return await self._payload(call, warmup, self._repeated(warmup))

    async def repeated_grpc_bytes(self, warmup: bool) -> Run:
        raw = self.b.raw
        assert raw is not None
        return await self._payload(raw.length, warmup, self._repeated(warmup))

    # result: a big bytes result out (the payload's size in, that many bytes back)

    async def _result(self, call: Callable[[int], Awaitable[bytes]], warmup: bool) -> Run:
        n = len(self.b.payload)
        calls = 1 if warmup else self.c.payload_calls
        same_size = [self.b.payload] * calls  # only their size matters here
        return await self._payload(lambda _: _length_of(call(n)), warmup, same_size)

    async def result_wool(self, warmup: bool) -> Run:
        return await self._result(workloads.make, warmup)

    async def result_ppe(self, warmup: bool) -> Run:
        return await self._result(lambda n: self.b.executor(workloads.make_sync, n), warmup)

    async def result_grpc(self, warmup: bool) -> Run:
        raw = self.b.raw
        assert raw is not None
        return await self._result(lambda n: raw.call(workloads.make_plain, n), warmup)

    async def result_grpc_bytes(self, warmup: bool) -> Run:
        raw = self.b.raw
        assert raw is not None
        return await self._result(raw.make, warmup)

    # script: throughput of a routine defined in a script's __main__, in a fresh process

    async def _script(self, where: str, warmup: bool) -> Run:
        if warmup:
            return Run()
        result = await run_probe(
            "bench.script_probe", where, str(self.c.throughput_tasks), str(self.c.cap)
        )
        return Run({"tasks_per_s": result["tasks_per_s"]}, result["tasks"], 0.0, result["capped"])

    # scale: many calls pending at once, in a fresh process (bench/scale_probe.py)

    async def _scale(self, backend: str, calls: int, warmup: bool) -> Run:
        if warmup:
            return Run()
        result = await run_probe("bench.scale_probe", backend, str(calls), str(self.c.scale_cap))
        values = {"tasks_per_s": result["tasks_per_s"], "kb_per_call": result["kb_per_call"]}
        return Run(values, result["tasks"], 0.0, result["capped"])

    async def scale_wool(self, warmup: bool) -> Run:
        return await self._scale("wool", self.c.scale_calls, warmup)

    async def scale_wool_small(self, warmup: bool) -> Run:
        return await self._scale("wool", self.c.scale_small_calls, warmup)

    async def scale_ppe_scale(self, warmup: bool) -> Run:
        return await self._scale("ppe", self.c.scale_calls, warmup)

    async def script_wool(self, warmup: bool) -> Run:
        return await self._script("main", warmup)

    async def script_importable(self, warmup: bool) -> Run:
        return await self._script("importable", warmup)

    # nested: the contract's TaskGroup fib

    async def nested_wool(self, warmup: bool) -> Run:
        n = min(8, self.c.fib_n) if warmup else self.c.fib_n
        calls = workloads.fib_calls(n)
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.c.nested_cap):
                result = await workloads.fib(n)
        except TimeoutError:
            raise RuntimeError(
                f"fib({n}) did not finish in {self.c.nested_cap:.0f} s (deadlock?)"
            ) from None
        elapsed = time.perf_counter() - start
        if result != _fib(n):
            raise RuntimeError(f"fib({n}) returned {result}, expected {_fib(n)}")
        return Run({"wall_s": elapsed, "calls_per_s": calls / elapsed}, calls, elapsed)

    # latency and throughput, leastbusy against round-robin (issue 13: within 5%). Each
    # measurement opens a pool of its own: of two long-lived pools with the same
    # balancer, the one entered first measured up to 1.2x slower in throughput here.

    async def _in_fresh_pool(self, balancer: str, run: Callable[[], Awaitable[Run]]) -> Run:
        async with wool.WorkerPool(size=2, loadbalancer=balancer):
            await concurrent(workloads.nop, self._tasks(True), self.c.cap)  # warm up
            return await run()

    async def lb_latency_wool_lb(self, warmup: bool) -> Run:
        return await self._in_fresh_pool("leastbusy", lambda: self.latency_wool(warmup))

    async def lb_latency_wool_rr(self, warmup: bool) -> Run:
        return await self._in_fresh_pool("roundrobin", lambda: self.latency_wool(warmup))

    async def lb_throughput_wool_lb(self, warmup: bool) -> Run:
        return await self._in_fresh_pool("leastbusy", lambda: self.throughput_wool(warmup))

    async def lb_throughput_wool_rr(self, warmup: bool) -> Run:
        return await self._in_fresh_pool("roundrobin", lambda: self.throughput_wool(warmup))

    # skewed and exponential: CPU-bound busy loops of uneven length, all sent at once

    def _lengths(self, workload: str, warmup: bool) -> list[float]:
        scale = self.c.spin_scale * (0.1 if warmup else 1.0)
        if workload == "exponential":
            tasks = 20 if warmup else self.c.exponential_tasks
            return workloads.exponential_lengths(tasks, 0.02 * scale)
        return workloads.skewed_lengths(4 if warmup else 20, 0.5 * scale, 0.01 * scale)

    async def _spread(self, lengths: list[float], call: Callable[[float], Awaitable[Any]]) -> Run:
        start = time.perf_counter()
        await asyncio.gather(*(call(length) for length in lengths))
        elapsed = time.perf_counter() - start
        return Run({"wall_s": elapsed}, len(lengths), elapsed)

    def _spin_ppe(self, length: float) -> Awaitable[Any]:
        return self.b.executor(workloads.spin_sync, length)

    async def skewed_wool(self, warmup: bool) -> Run:
        return await self._spread(self._lengths("skewed", warmup), workloads.spin)

    async def skewed_wool_lb1(self, warmup: bool) -> Run:
        return await self.b.within("wool_lb1", self.skewed_wool(warmup))

    async def skewed_wool_lb1s(self, warmup: bool) -> Run:
        return await self.b.within("wool_lb1s", self.skewed_wool(warmup))

    async def skewed_ppe(self, warmup: bool) -> Run:
        return await self._spread(self._lengths("skewed", warmup), self._spin_ppe)

    async def exponential_wool(self, warmup: bool) -> Run:
        return await self._spread(self._lengths("exponential", warmup), workloads.spin)

    async def exponential_wool_lb1(self, warmup: bool) -> Run:
        return await self.b.within("wool_lb1", self.exponential_wool(warmup))

    async def exponential_wool_lb1s(self, warmup: bool) -> Run:
        return await self.b.within("wool_lb1s", self.exponential_wool(warmup))

    async def exponential_ppe(self, warmup: bool) -> Run:
        return await self._spread(self._lengths("exponential", warmup), self._spin_ppe)

    # blocked: one call blocks its worker's loop while quick calls run, one after another

    async def blocked_wool(self, warmup: bool) -> Run:
        seconds = self.c.block_seconds * (0.1 if warmup else 1.0)
        calls = 10 if warmup else self.c.blocked_calls
        blocker = asyncio.ensure_future(workloads.block(seconds))
        await asyncio.sleep(0.05)  # bench only: let the blocking call reach its worker
        samples: list[float] = []
        started = time.perf_counter()
        for _ in range(calls):
            start = time.perf_counter()
            await workloads.nop()
            samples.append(time.perf_counter() - start)
        elapsed = time.perf_counter() - started
        await blocker
        samples.sort()
        values = {
            "p50_us": percentile(samples, 50) * 1e6,
            "p99_us": percentile(samples, 99) * 1e6,
            "max_us": samples[-1] * 1e6,
        }
        return Run(values, calls, elapsed)

    async def blocked_wool_lb(self, warmup: bool) -> Run:
        return await self.b.within("wool_lb", self.blocked_wool(warmup))

    # two_callers: two processes send the skewed load to two shared durable workers

    async def two_callers_wool_lb1(self, warmup: bool) -> Run:
        durable = self.b.durable
        assert durable is not None
        lengths = self._lengths("skewed", warmup)
        callers = [
            await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "bench.callers_probe", durable.namespace, "2"),
                json.dumps(lengths),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                cwd=ROOT,
                env=bench_env(),
            )
            for _ in range(2)
        ]
        try:
            for caller in callers:
                assert caller.stdout is not None
                if await caller.stdout.readline() != b"ready\n":
                    raise RuntimeError("a caller process failed before it was ready")
            start = time.perf_counter()
            for caller in callers:
                assert caller.stdin is not None
                caller.stdin.write(b"go\n")
            for caller in callers:
                assert caller.stdout is not None
                if await caller.stdout.readline() != b"done\n":
                    raise RuntimeError("a caller process failed during its load")
            elapsed = time.perf_counter() - start
        finally:
            for caller in callers:
                if caller.returncode is None and caller.stdin is not None:
                    caller.stdin.close()
                async with asyncio.timeout(30):
                    await caller.wait()
        return Run({"wall_s": elapsed}, 2 * len(lengths), elapsed)

    async def two_callers_ideal(self, warmup: bool) -> Run:
        total = 2 * sum(self._lengths("skewed", warmup))
        return Run({"wall_s": total / 2}, 0, 0.0)

    # events: a fresh process per measurement, since handlers cannot be unregistered

    async def _events(self, mode: str, warmup: bool) -> Run:
        if warmup:
            return Run()
        calls = self.c.event_calls
        result = await run_probe(
            "bench.events_probe",
            mode,
            str(calls),
            str(max(50, calls // 10)),
            str(self.c.cap),
            loop="uvloop" if mode == "uvloop" else "",
        )
        return Run(
            {"p50_us": result["p50_us"], "p99_us": result["p99_us"]},
            result["calls"],
            0.0,
            result["capped"],
        )

    async def events_none(self, warmup: bool) -> Run:
        return await self._events("none", warmup)

    async def events_noop(self, warmup: bool) -> Run:
        return await self._events("noop", warmup)

    async def events_sleep(self, warmup: bool) -> Run:
        return await self._events("sleep", warmup)

    async def events_otel(self, warmup: bool) -> Run:
        return await self._events("otel", warmup)

    async def events_uvloop(self, warmup: bool) -> Run:
        return await self._events("uvloop", warmup)

    # discovery: a fresh process per measurement (bench/discovery_probe.py)

    async def discovery_local(self, warmup: bool) -> Run:
        return Run() if warmup else Run(await discovery_probe.probe("local", self.c.cap))

    async def discovery_etcd(self, warmup: bool) -> Run:
        return Run() if warmup else Run(await discovery_probe.probe("etcd", self.c.cap))


async def _length_of(result: Awaitable[bytes]) -> int:
    return len(await result)


def workload_cap(config: Config, workload: str) -> float:
    """The soft limit of one measurement of ``workload``, seconds."""
    return {"nested": config.nested_cap, "scale": config.scale_cap}.get(workload, config.cap)


def _fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


# --- the run --------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run_suite(config: Config, selected: Sequence[str]) -> dict[str, Any]:
    began = time.perf_counter()
    loadavg_at_start = _loadavg()
    chosen = [w for w in WORKLOADS if w.name in selected]
    runs: dict[tuple[str, str], list[Run]] = {(w.name, b): [] for w in chosen for b in w.backends}
    notes: list[str] = []
    rounds = 0
    needed = frozenset(b for w in chosen for b in w.backends) | frozenset(w.name for w in chosen)
    async with Backends(config, needed) as backends:
        measure = Measure(backends, config)
        log(f"[bench] backends up in {time.perf_counter() - began:.1f} s; warming up")
        for workload in chosen:
            for backend in workload.backends:
                run = await _isolated(measure.run(workload.name, backend, warmup=True))
                if run.error:
                    log(f"[bench] warmup {workload.name}/{backend} failed: {run.error}")
        round_seconds = 0.0
        for index in range(config.repeats):
            elapsed = time.perf_counter() - began
            if index and elapsed + round_seconds > config.budget:
                notes.append(
                    f"stopped after {index} of {config.repeats} rounds: the next would end past "
                    f"the {config.budget:.0f} s budget"
                )
                break
            round_began = time.perf_counter()
            for workload in chosen:
                if workload.max_rounds is not None and index >= workload.max_rounds:
                    continue
                backends_order = _rotate(workload.backends, index)
                for backend in backends_order:
                    run = await _isolated(measure.run(workload.name, backend))
                    runs[workload.name, backend].append(run)
                    log(f"[bench] round {index + 1} {workload.name}/{backend}: {_brief(run)}")
            round_seconds = time.perf_counter() - round_began
            rounds += 1
    elapsed = time.perf_counter() - began
    return _report(config, chosen, runs, rounds, notes, elapsed, loadavg_at_start)


async def _isolated(coroutine: Awaitable[Run]) -> Run:
    """Run in a task of its own: a pool entered inside does not leak its context."""
    return await asyncio.ensure_future(coroutine)


def _rotate(items: tuple[str, ...], by: int) -> tuple[str, ...]:
    by %= len(items)
    return items[by:] + items[:by]


def _brief(run: Run) -> str:
    if run.error:
        return f"ERROR {run.error}"
    values = ", ".join(f"{k}={_fmt(v)}" for k, v in run.values.items())
    return values + (f" (capped after {run.count})" if run.capped else "")


def _row(workload: Workload, metric: Metric, backend: str) -> dict[str, Any]:
    return {
        "workload": workload.name,
        "metric": metric.key,
        "label": metric.label,
        "unit": metric.unit,
        "better": metric.better,
        "backend": backend,
        "backend_label": BACKENDS[backend],
        "available": True,
        "median": None,
        "min": None,
        "max": None,
        "n": 0,
        "samples": [],
        "counts": [],
        "capped": 0,
        "errors": [],
        "ratio": None,
        "ratio_of": None,
    }


def _report(
    config: Config,
    chosen: list[Workload],
    runs: dict[tuple[str, str], list[Run]],
    rounds: int,
    notes: list[str],
    elapsed: float,
    loadavg_at_start: list[float] | None,
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    medians: dict[tuple[str, str, str], float] = {}
    for workload in chosen:
        for metric in workload.metrics:
            for backend in workload.backends:
                all_runs = runs[workload.name, backend]
                good = [r for r in all_runs if r.error is None]
                row = _row(workload, metric, backend)
                row["samples"] = [r.values[metric.key] for r in good]
                row["capped"] = sum(r.capped for r in good)
                row["counts"] = [r.count for r in good]
                row["errors"] = [r.error for r in all_runs if r.error]
                if row["samples"]:
                    row.update(summary(row["samples"]))
                    medians[workload.name, metric.key, backend] = row["median"]
                rows.append(row)
            for backend, why in workload.unavailable.items():
                rows.append(_row(workload, metric, backend) | {"available": False, "reason": why})
    by_name = {w.name: w for w in chosen}
    for row in rows:
        workload = by_name[row["workload"]]
        if not row["available"] or row["backend"] == workload.subject:
            continue
        subject = medians.get((workload.name, row["metric"], workload.subject))
        value = row["median"]
        if subject is None or value is None or value == 0 or subject == 0:
            continue
        if workload.per_reference:
            row["ratio"] = value / subject
            row["ratio_of"] = f"{row['backend']}/{workload.subject}"
        else:
            row["ratio"] = subject / value
            row["ratio_of"] = f"{workload.subject}/{row['backend']}"
    targets = []
    for target in TARGETS:
        if target.workload not in by_name:
            continue
        row = next(
            r
            for r in rows
            if (r["workload"], r["metric"], r["backend"])
            == (target.workload, target.metric, target.backend)
        )
        value = row["ratio"] if target.kind == "ratio" else row["median"]
        met = target.check(value)
        row["target"] = target.text + (" (suite)" if target.source == "suite" else "")
        row["met"] = met
        targets.append({**asdict(target), "value": value, "met": met})
    capped = sorted({r["workload"] for r in rows if r["capped"]})
    if capped:
        caps = ", ".join(f"{w} {workload_cap(config, w):.0f} s" for w in capped)
        notes.append(
            f"a median marked * includes runs that hit the cap of one measurement ({caps}); "
            "their rate is over the calls or items done by then (counts in the JSON)"
        )
    if "throughput" in by_name:
        notes.append(
            f"raw gRPC throughput keeps at most {config.grpc_inflight} calls in flight "
            "(an asyncio.Semaphore; unbounded bursts get CANCELLED by the servers); wool and "
            "ProcessPoolExecutor get all tasks at once"
        )
    if "startup" in by_name:
        notes.append(
            "ProcessPoolExecutor uses the spawn start method, like wool's workers (forking a "
            "process with live gRPC threads is unsafe); it spawns workers on demand, so its "
            "first result waits for one process only"
        )
    errors = [f"{r['workload']}/{r['backend']}: {e}" for r in rows for e in r["errors"]]
    info = machine()
    if info["wool_plugins"]:
        notes.append(
            "wool.plugins entry points are installed (their hooks run in every wool process "
            f"and can cost time): {', '.join(info['wool_plugins'])}"
        )
    return {
        "suite": "wool bench",
        "schema": 1,
        "machine": info,
        "loadavg_at_start": loadavg_at_start,
        "config": asdict(config),
        "rounds": rounds,
        "elapsed_s": elapsed,
        "results": rows,
        "targets": targets,
        "notes": notes,
        "errors": sorted(set(errors)),
        "ok": not errors,
    }


# --- machine --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": version("protobuf"),
        "cloudpickle": version("cloudpickle"),
        "wool": wool.__version__,
        "commit": _git_commit(),
        "loadavg": _loadavg(),
        "wool_plugins": sorted(
            f"{e.name} = {e.value}" for e in importlib.metadata.entry_points(group="wool.plugins")
        ),
    }


def _loadavg() -> list[float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


def _git_commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


# --- the table ------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


HEADER = ("workload", "metric", "backend", "median", "min - max", "n", "ratio", "target", "")


def table_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    lines: list[tuple[str, ...]] = []
    previous: tuple[str, str] = ("", "")
    for row in report["results"]:
        key = (row["workload"], row["metric"])
        workload = row["workload"] if row["workload"] != previous[0] else ""
        metric = f"{row['label']} ({row['unit']})" if key != previous else ""
        previous = key
        if not row["available"]:
            lines.append((workload, metric, row["backend_label"], row["reason"]) + ("",) * 5)
            continue
        if row["median"] is None:
            median = "ERROR" if row["errors"] else "-"
            spread = ""
        else:
            median = _fmt(row["median"]) + ("*" if row["capped"] else "")
            spread = f"{_fmt(row['min'])} - {_fmt(row['max'])}"
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else ""
        status = {True: "met", False: "MISSED", None: "n/a"}.get(row.get("met"), "")
        if "target" not in row:
            status = ""
        target = row.get("target", "")
        lines.append(
            (workload, metric, row["backend_label"], median, spread, str(row["n"]), ratio, target)
            + (status,)
        )
    return lines


def render_text(report: dict[str, Any]) -> str:
    m = report["machine"]
    out = [
        f"wool bench: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"grpcio {m['grpcio']}, wool {m['wool']} ({m['commit'] or 'no git'}), "
        f"{m['platform']}",
        f"{report['rounds']} round(s), medians with min - max over rounds; "
        f"{report['elapsed_s']:.0f} s; load average {report['loadavg_at_start']} at start, "
        f"{m['loadavg']} at end",
        "ratio: wool / that backend in the metric's own unit (events: that handler / no "
        "handler); check the 'better' direction of each metric",
        "",
    ]
    lines = [HEADER, *table_rows(report)]
    plain = [line for line in lines if line[4] or not line[3].startswith(("n/a", "no base"))]
    widths = [max(len(line[i]) for line in plain) for i in range(len(HEADER))]
    for line in lines:
        if not line[4] and line[3].startswith(("n/a", "no baseline")):
            head = "  ".join(c.ljust(widths[i]) for i, c in enumerate(line[:3]))
            out.append(f"{head}  {line[3]}")
            continue
        cells = []
        for i, cell in enumerate(line):
            cells.append(cell.rjust(widths[i]) if i in (3, 4, 5, 6) else cell.ljust(widths[i]))
        out.append("  ".join(cells).rstrip())
    out.append("")
    met = [t for t in report["targets"] if t["met"]]
    out.append(f"targets met: {len(met)} of {len(report['targets'])}")
    for target in report["targets"]:
        if not target["met"]:
            label = BACKENDS[target["backend"]]
            value = "no value" if target["value"] is None else _fmt(target["value"])
            out.append(
                f"  missed: {target['workload']} {target['metric']} {label} {target['text']}"
                f" (got {value}{'x' if target['kind'] == 'ratio' and target['value'] else ''})"
            )
    for note in report["notes"]:
        out.append(f"note: {note}")
    for error in report["errors"]:
        out.append(f"ERROR: {error}")
    return "\n".join(out)


def render_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    out = [
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, grpcio {m['grpcio']}, "
        f"wool {m['wool']} ({m['commit'] or 'no git'}); {report['rounds']} rounds, "
        f"median (min - max); load average {report['loadavg_at_start']} at start, "
        f"{m['loadavg']} at end",
        "",
        "| " + " | ".join(h or "status" for h in HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    for line in table_rows(report):
        cells = list(line) + [""] * (len(HEADER) - len(line))
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.extend(f"- {note}" for note in report["notes"])
    return "\n".join(out) + "\n"


# --- command line ---------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> tuple[Config, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts, for a smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table as Markdown")
    parser.add_argument("--repeats", type=int, help="rounds to run (default 5; quick 2)")
    parser.add_argument(
        "--only",
        metavar="W[,W...]",
        help=f"run only these workloads, of: {', '.join(WORKLOAD_NAMES)}",
    )
    parser.add_argument("--cap", type=float, help="soft seconds limit of one measurement")
    parser.add_argument("--budget", type=float, help="seconds for all rounds")
    parser.add_argument(
        "--grpc-inflight", type=int, help="in-flight bound of the raw gRPC throughput baseline"
    )
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    if args.repeats is not None:
        if args.repeats < 1:
            parser.error("--repeats must be at least 1")
        config = replace(config, repeats=args.repeats)
    if args.cap is not None:
        config = replace(config, cap=args.cap)
    if args.budget is not None:
        config = replace(config, budget=args.budget)
    if args.grpc_inflight is not None:
        config = replace(config, grpc_inflight=max(1, args.grpc_inflight))
    args.selected = WORKLOAD_NAMES
    if args.only:
        args.selected = tuple(name.strip() for name in args.only.split(",") if name.strip())
        unknown = set(args.selected) - set(WORKLOAD_NAMES)
        if unknown:
            parser.error(f"unknown workload(s) {sorted(unknown)}; known: {WORKLOAD_NAMES}")
    return config, args


def main(argv: Sequence[str] | None = None) -> int:
    config, args = parse(argv)
    report = asyncio.run(run_suite(config, args.selected))
    print(render_text(report), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(render_markdown(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
