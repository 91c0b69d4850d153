"""`wool worker`: workers in the foreground that other processes' pools use."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import pytest
import trustme

import wool
from tests.cli import routines as cli_routines
from tests.cli.helpers import BOUND, alive, listed, namespace, run, running
from tests.core import routines as r


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_workers_serve_a_durable_pool_and_stop_on_a_signal(sig):
    ns = namespace()
    async with running("worker", "--size", "2", "--namespace", ns) as command:
        workers = await command.ready()
        assert len(workers) == 2
        async with wool.WorkerPool(discovery=wool.LocalDiscovery(ns)) as pool:
            assert pool.proxy is not None
            await pool.proxy.wait_for([w.uid for w in workers], timeout=10)
            pids = {await r.pid() for _ in range(6)}
            assert await r.add(1, 2) == 3
        assert pids == {w.pid for w in workers}
        records = await listed(ns)
        assert {(d["uid"], d["pid"], d["address"]) for d in records} == {
            (w.uid, w.pid, w.address) for w in workers
        }
        table = await run("workers", "--namespace", ns, "--wait", "0.5")
        assert all(w.address.startswith("unix:/") and w.address in table.stdout for w in workers)
        command.send_signal(sig)
        result = await command.finish()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "stopped"
    assert "Traceback" not in result.stderr
    assert not any(alive(w.pid) for w in workers)
    sockets = [Path(w.address.removeprefix("unix:")) for w in workers]
    assert not any([await asyncio.to_thread(s.exists) for s in sockets])
    assert await listed(ns) == []


async def test_a_task_in_flight_at_sigterm_gets_the_grace_period():
    started = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        started.set()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ns = namespace()
    try:
        async with running("worker", "--size", "1", "--namespace", ns, "--grace", "10") as command:
            [worker] = await command.ready()
            async with wool.WorkerPool(discovery=wool.LocalDiscovery(ns)) as pool:
                assert pool.proxy is not None
                await pool.proxy.wait_for([worker.uid], timeout=10)
                task = asyncio.create_task(cli_routines.slow(port, 1.0))
                async with asyncio.timeout(BOUND):
                    await started.wait()
                command.send_signal(signal.SIGTERM)
                async with asyncio.timeout(BOUND):
                    assert await task == worker.pid
            result = await command.finish()
    finally:
        server.close()
        await server.wait_closed()
    assert result.returncode == 0, result.stderr
    assert "SIGTERM: stopping 1 worker (grace 10 s" in result.stdout
    assert not alive(worker.pid)


async def test_without_restarts_a_dead_worker_is_withdrawn_and_the_others_keep_serving():
    ns = namespace()
    async with running("worker", "--size", "2", "--namespace", ns, "--no-restart") as command:
        first, second = await command.ready()
        os.kill(first.pid, signal.SIGKILL)
        report = await command.error_line(lambda line: first.uid in line)
        assert report == (
            f"wool: worker {first.uid} (pid {first.pid}) was killed by SIGKILL; withdrew it "
            f"from local discovery (namespace '{ns}'), 1 left"
        )
        assert [d["uid"] for d in await listed(ns)] == [second.uid]
        async with wool.WorkerPool(discovery=wool.LocalDiscovery(ns)) as pool:
            assert pool.proxy is not None
            await pool.proxy.wait_for([second.uid], timeout=10)
            assert await r.pid() == second.pid
        os.kill(second.pid, signal.SIGKILL)
        result = await command.finish()
    assert result.returncode == 1
    assert "every worker has exited (restarts are off)" in result.stderr
    assert await listed(ns) == []


async def test_tags_ports_and_advertised_address():
    ns = namespace()
    port = _free_port_pair()
    args = ["--size", "2", "--namespace", ns, "--tag", "gpu", "--tag", "big"]
    args += ["--host", "127.0.0.1", "--port", str(port), "--advertise", "localhost"]
    async with running("worker", *args) as command:
        workers = await command.ready()
        assert [w.address for w in workers] == [f"localhost:{port}", f"localhost:{port + 1}"]
        assert all(w.tags == {"gpu", "big"} and not w.secure for w in workers)
        records = await listed(ns)
        assert [d["tags"] for d in records] == [["big", "gpu"]] * 2
        async with wool.WorkerPool("gpu", discovery=wool.LocalDiscovery(ns)) as pool:
            assert pool.proxy is not None
            await pool.proxy.wait_for([w.uid for w in workers], timeout=10)
            assert {await r.pid() for _ in range(4)} == {w.pid for w in workers}
        command.send_signal(signal.SIGTERM)
        assert (await command.finish()).returncode == 0


async def test_a_port_in_use_is_refused_before_any_worker_starts():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with running(
            "worker", "--size", "1", "--host", "127.0.0.1", "--port", str(port)
        ) as command:
            result = await command.finish()
    assert result.returncode == 2
    assert result.stderr == (
        f"wool worker: error: port {port} on 127.0.0.1 is already in use; choose another "
        "--port, or --port 0 for ports the system picks"
    )


async def test_mutual_tls_workers_serve_a_pool_with_the_same_credentials(tmp_path):
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")  # unix sockets are checked as localhost
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    for i, blob in enumerate(leaf.cert_chain_pems):
        blob.write_to_path(str(tmp_path / "cert.pem"), append=i > 0)
    files = ["--ca", str(tmp_path / "ca.pem"), "--cert", str(tmp_path / "cert.pem")]
    files += ["--key", str(tmp_path / "key.pem")]
    credentials = wool.WorkerCredentials.from_files(
        ca_path=tmp_path / "ca.pem", key_path=tmp_path / "key.pem", cert_path=tmp_path / "cert.pem"
    )
    ns = namespace()
    async with running("worker", "--size", "1", "--namespace", ns, *files) as command:
        [worker] = await command.ready()
        assert worker.secure and worker.address.startswith("unix:")
        assert [d["secure"] for d in await listed(ns)] == [True]
        async with wool.WorkerPool(
            discovery=wool.LocalDiscovery(ns), credentials=credentials
        ) as pool:
            assert pool.proxy is not None
            await pool.proxy.wait_for([worker.uid], timeout=10)
            assert await r.pid() == worker.pid
        command.send_signal(signal.SIGINT)
        assert (await command.finish()).returncode == 0


def _free_port_pair() -> int:
    """A port P such that P and P + 1 are free now (the worker binds them just after)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise AssertionError("no two consecutive free ports")


async def test_concurrency_bounds_each_workers_calls_and_nested_calls_still_finish():
    ns = namespace()
    async with running("worker", "--size", "1", "--concurrency", "1", "--namespace", ns) as command:
        [worker] = await command.ready()
        async with wool.WorkerPool(
            discovery=wool.LocalDiscovery(ns), loadbalancer="leastbusy"
        ) as pool:
            assert pool.proxy is not None
            await pool.proxy.wait_for([worker.uid], timeout=10)
            peaks = await asyncio.gather(*(r.running_peak(0.05) for _ in range(4)))
            assert max(peaks) == 1  # one worker, one call at a time: the others waited
            assert await r.fib(6) == 8  # a parent waiting on its children gives its slot up
