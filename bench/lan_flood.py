"""A legitimate LAN caller under a flood of fake worker records: ``python -m bench.lan_flood``.

Needs root and iproute2 (it builds network namespaces, like the LAN tests; nothing touches
a real interface). Three hosts on a bridge: a worker host (198.18.0.1, a hybrid pool of
one worker with mutual TLS, published through LanDiscovery), a caller (198.18.0.2, a
durable pool with the same CA) and a rogue (198.18.0.3). The caller makes sequential
``nop()`` calls (or, with ``--call-ms M``, calls that wait M ms on the worker) for
``--seconds`` (bounded in count too) before the flood, then while
the rogue multicasts ``--flood`` fake ``secure=1`` services (default 5,000) within
``--within`` seconds (default 3), all pointing at a port of the rogue that accepts TCP
connections and closes them (every handshake fails), then once more after the flood.
It prints calls per second, the caller's resident memory (peak during each phase), the
CPU seconds of the caller, the worker host (its pool and worker) and this process (the
rogue), the load average, and the ratios to the baseline; issue 10's target is >= 0.80
for calls/s and < 2.0 for memory. The caller's CPU per call, as a ratio to the baseline,
is what the flood costs the caller itself, whatever else the machine runs meanwhile.

``--spoof N`` spreads the flood over N more source addresses (198.18.1.x) that the rogue
claims; ``--ports N`` spreads the fake workers over N listening ports of the rogue (so
that they are N different addresses to the caller). ``--profile DIR`` has the caller
write a cProfile of each phase's event-loop thread to ``DIR/<phase>.prof``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import wool  # noqa: E402

WORKER, CALLER, ROGUE = "198.18.0.1", "198.18.0.2", "198.18.0.3"
MAX_CALLS = 200_000
"""Calls one phase makes at most, whatever ``--seconds`` says."""


@wool.routine
async def remote_wait(milliseconds: float) -> None:
    """A call that takes ``milliseconds`` on the worker without using its CPU (I/O)."""
    await asyncio.sleep(milliseconds / 1000)


def rss_kib() -> int:
    """This process's resident set size, KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user and system) used so far by process ``pid`` and its live
    descendants, from /proc."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
    return total


def credentials(directory: Path, who: str) -> Any:
    import wool

    return wool.WorkerCredentials.from_files(
        ca_path=directory / "ca.pem",
        key_path=directory / f"{who}.key",
        cert_path=directory / f"{who}.pem",
    )


async def host(directory: Path) -> None:
    """The worker host: one worker with mutual TLS, published on the LAN."""
    import wool
    from bench import workloads  # noqa: F401 - the routine the caller sends

    discovery = wool.LanDiscovery(interfaces=[WORKER], ttl=60)
    async with wool.WorkerPool(
        size=1, host=WORKER, discovery=discovery, credentials=credentials(directory, "worker")
    ):
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.to_thread(sys.stdin.read)


async def caller(directory: Path, profile: Path | None = None) -> None:
    """The caller: answers ``{"seconds": s}`` lines with the rate and peak memory of a
    phase of sequential calls."""
    import wool
    from bench.workloads import nop

    discovery = wool.LanDiscovery(interfaces=[CALLER])
    async with wool.WorkerPool(
        discovery=discovery, credentials=credentials(directory, "caller"), wait_for_workers=60
    ) as pool:
        assert pool.proxy is not None
        await pool.proxy.wait_until(bool, timeout=60)
        await nop()
        print(json.dumps({"ready": True}), flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            request = json.loads(line)
            seconds, milliseconds = request["seconds"], request["call_ms"]
            calls, peak, errors = 0, rss_kib(), 0
            profiler = cProfile.Profile() if profile is not None else None
            if profiler is not None:
                profiler.enable()
            started, cpu = time.monotonic(), time.process_time()
            while time.monotonic() - started < seconds and calls < MAX_CALLS:
                try:
                    await (remote_wait(milliseconds) if milliseconds else nop())
                except Exception:
                    errors += 1
                calls += 1
                if calls % 50 == 0:
                    peak = max(peak, rss_kib())
            elapsed = time.monotonic() - started
            if profiler is not None and profile is not None:
                profiler.disable()
                profiler.dump_stats(profile / f"{request.get('phase', 'phase')}.prof")
            reply = {
                "calls_per_s": calls / elapsed,
                "errors": errors,
                "peak_rss_kib": max(peak, rss_kib()),
                "cpu_s": time.process_time() - cpu,
                "workers_known": len(pool.proxy.workers),
            }
            print(json.dumps(reply), flush=True)


def _fake_records(count: int, ports: list[int]) -> list[list[Any]]:
    """The records of ``count`` fake secure workers at ``ROGUE`` on ``ports`` in turn, a
    few per packet."""
    from zeroconf import (
        DNSPointer,  # pyright: ignore[reportPrivateImportUsage]
        DNSService,  # pyright: ignore[reportPrivateImportUsage]
        DNSText,  # pyright: ignore[reportPrivateImportUsage]
    )

    import wool
    from wool_discovery_lan import DEFAULT_SERVICE_TYPE, encode_txt
    from wool_discovery_lan._records import txt_bytes

    packets: list[list[Any]] = []
    for index in range(count):
        if index % 4 == 0:
            packets.append([])
        uid = f"fake-{os.getpid()}-{index}"
        port = ports[index % len(ports)]
        fake = wool.WorkerMetadata(uid, f"{ROGUE}:{port}", 1, "0", secure=True)
        name = f"{uid}.{DEFAULT_SERVICE_TYPE}"
        packets[-1] += [
            DNSPointer(DEFAULT_SERVICE_TYPE, 12, 1, 4500, name),
            DNSService(name, 33, 1 | 0x8000, 4500, 0, 0, port, "rogue.local."),
            DNSText(name, 16, 1 | 0x8000, 4500, txt_bytes(encode_txt(fake, seq=1))),
        ]
    return packets


def flood_packets(count: int, ports: list[int]) -> list[bytes]:
    """The wire form of the flood, built before it is sent (so that building it does
    not count against the caller during the flood)."""
    from zeroconf import DNSOutgoing  # pyright: ignore[reportPrivateImportUsage]

    packets: list[bytes] = []
    for records in _fake_records(count, ports):
        out = DNSOutgoing(0x8400, multicast=True)
        for record in records:
            out.add_answer_at_time(record, 0)
        packets += out.packets()
    return packets


async def flood(rogue: Any, packets: list[bytes], within: float, spoof: int) -> float:
    """Multicast ``packets`` from the rogue (and ``spoof`` addresses it claims), spread
    evenly over ``within`` seconds."""
    sources = [ROGUE] + [f"198.18.1.{i}" for i in range(1, spoof + 1)]
    namespace = rogue.namespace
    sockets = []
    with namespace.entered():
        for source in sources[1:]:
            namespace.ip("addr", "add", f"{source}/32", "dev", "eth0")
        for source in sources:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((source, 5353))
            sockets.append(sock)
    started = time.monotonic()
    try:
        for index, data in enumerate(packets):
            sockets[index % len(sockets)].sendto(data, ("224.0.0.251", 5353))
            due = started + within * (index + 1) / len(packets)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
    finally:
        for sock in sockets:
            sock.close()
    return time.monotonic() - started


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    import trustme

    from tests.support import netns

    reason = netns.unavailable()
    if reason is not None:
        raise SystemExit(f"lan_flood: {reason}")
    with tempfile.TemporaryDirectory() as tmp, netns.network("worker", "caller", "rogue") as net:
        directory = Path(tmp)
        ca = trustme.CA()
        (directory / "ca.pem").write_bytes(ca.cert_pem.bytes())
        for who, names in (("worker", [WORKER]), ("caller", ["wool-caller.test"])):
            leaf = ca.issue_cert(*names)
            (directory / f"{who}.key").write_bytes(leaf.private_key_pem.bytes())
            (directory / f"{who}.key").chmod(0o600)
            (directory / f"{who}.pem").write_bytes(
                b"".join(b.bytes() for b in leaf.cert_chain_pems)
            )
        rogue = net.hosts["rogue"]
        accepted = 0

        def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            writer.close()

        with rogue.namespace.entered():
            servers = [await asyncio.start_server(slam, ROGUE, 0) for _ in range(args.ports)]
        ports = [server.sockets[0].getsockname()[1] for server in servers]
        me = [sys.executable, "-m", "bench.lan_flood"]
        profiling = ["--profile", str(args.profile.resolve())] if args.profile else []
        env = {"PYTHONPATH": os.pathsep.join([str(ROOT), *(p for p in sys.path if p)])}
        results: dict[str, Any] = {
            "flood": args.flood,
            "within": args.within,
            "spoof": args.spoof,
            "ports": args.ports,
            "call_ms": args.call_ms,
        }
        try:
            async with (
                netns.spawn(net.hosts["worker"].command(*me, "--role", "host", tmp), env) as host_p,
                contextlib.AsyncExitStack() as stack,
            ):
                await host_p.line(timeout=120)
                caller_p = await stack.enter_async_context(
                    netns.spawn(
                        net.hosts["caller"].command(*me, *profiling, "--role", "caller", tmp), env
                    )
                )
                await caller_p.line(timeout=120)
                assert caller_p.process.stdin is not None

                async def phase(name: str) -> dict[str, Any]:
                    request = {"seconds": args.seconds, "call_ms": args.call_ms, "phase": name}
                    stdin = caller_p.process.stdin
                    assert stdin is not None
                    cpu = {"host": tree_cpu_seconds(host_p.pid), "rogue": time.process_time()}
                    load = os.getloadavg()[0]
                    stdin.write(json.dumps(request).encode() + b"\n")
                    reply = await caller_p.line(timeout=args.seconds + 120)
                    reply["host_cpu_s"] = tree_cpu_seconds(host_p.pid) - cpu["host"]
                    reply["orchestrator_cpu_s"] = time.process_time() - cpu["rogue"]
                    reply["load_average"] = [load, os.getloadavg()[0]]
                    return reply

                packets = flood_packets(args.flood, ports)
                await phase("warm-up")
                results["before"] = await phase("before")
                measuring = asyncio.ensure_future(phase("during"))
                results["flood_seconds"] = await flood(rogue, packets, args.within, args.spoof)
                results["during"] = await measuring
                results["after"] = await phase("after")
                results["rogue_connections"] = accepted
        finally:
            for server in servers:
                server.close()
                await server.wait_closed()
    base = results["before"]
    for name in ("during", "after"):
        results[f"{name}_calls_ratio"] = results[name]["calls_per_s"] / base["calls_per_s"]
        results[f"{name}_memory_ratio"] = results[name]["peak_rss_kib"] / base["peak_rss_kib"]
        results[f"{name}_cpu_per_call_ratio"] = (
            results[name]["cpu_s"] / max(1, results[name]["calls_per_s"])
        ) / (base["cpu_s"] / max(1, base["calls_per_s"]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--role", choices=["orchestrator", "host", "caller"], default="orchestrator"
    )
    parser.add_argument("directory", nargs="?")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--flood", type=int, default=5000)
    parser.add_argument("--within", type=float, default=3.0)
    parser.add_argument("--spoof", type=int, default=0)
    parser.add_argument("--ports", type=int, default=1)
    parser.add_argument("--call-ms", type=float, default=0.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    if args.role == "host":
        asyncio.run(host(Path(args.directory)))
        return
    if args.role == "caller":
        asyncio.run(caller(Path(args.directory), args.profile))
        return
    results = asyncio.run(orchestrate(args))
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
