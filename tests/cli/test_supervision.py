"""`wool worker` supervises its workers: it restarts the dead with a new uid, gives up on a
worker that cannot start, and a stop signal to its whole process group keeps the grace."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

import wool
from tests.cli import routines as cli_routines
from tests.cli.helpers import BOUND, ENV, alive, listed, namespace, running
from tests.core import routines as r

RESTART_TRIES = 5
"""The number of tries `wool worker` makes before it gives a worker up (the default)."""


@pytest.mark.parametrize(
    ("sig", "how"),
    [(signal.SIGKILL, "was killed by SIGKILL"), (signal.SIGTERM, "was stopped by SIGTERM")],
    ids=["SIGKILL", "SIGTERM"],
)
async def test_a_killed_worker_is_restarted_with_a_new_uid_and_published(
    sig: signal.Signals, how: str
):
    ns = namespace()
    async with running("worker", "--size", "1", "--namespace", ns) as command:
        [dead] = await command.ready()
        os.kill(dead.pid, sig)
        death = await command.error_line(lambda line: dead.uid in line and sig.name in line)
        assert f"worker {dead.uid} (pid {dead.pid}) {how}" in death
        assert "restarts it in" in death and f"(try 1 of {RESTART_TRIES})" in death
        restart = await command.error_line(lambda line: "restarted worker" in line)
        # wool: restarted worker OLD as NEW at ADDRESS (pid PID)
        words = restart.split()
        assert words[3] == dead.uid
        uid, address, pid = words[5], words[7], int(words[9].rstrip(")"))
        assert uid != dead.uid and pid != dead.pid
        records = await listed(ns)
        assert [(d["uid"], d["address"], d["pid"]) for d in records] == [(uid, address, pid)]
        async with wool.WorkerPool(discovery=wool.LocalDiscovery(ns)) as pool:
            assert pool.proxy is not None
            await pool.proxy.wait_for([uid], timeout=BOUND)
            assert await r.pid() == pid
        command.send_signal(signal.SIGTERM)
        result = await command.finish()
    assert result.returncode == 0, result.stderr
    assert not alive(pid)
    assert await listed(ns) == []


async def test_a_worker_that_cannot_start_again_is_given_up_with_its_error_output(
    tmp_path: Path,
):
    flag = tmp_path / "refuse"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, sys\n"
        f"if os.path.exists({str(flag)!r}):\n"
        "    sys.stderr.write('sitecustomize: this worker refuses to start\\n')\n"
        "    sys.stderr.flush()\n"
        "    os._exit(3)\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(site), ENV["PYTHONPATH"]])}
    ns = namespace()
    async with running("worker", "--size", "1", "--namespace", ns, env=env) as command:
        [worker] = await command.ready()
        flag.touch()
        os.kill(worker.pid, signal.SIGKILL)
        result = await command.finish()
    assert result.returncode == 1
    tries = [line for line in result.stderr.splitlines() if "(try " in line]
    assert [line.rsplit("(try ", 1)[1] for line in tries] == [
        f"{n} of {RESTART_TRIES})" for n in range(1, RESTART_TRIES + 1)
    ]
    assert f"failed {RESTART_TRIES} times in a row and is not restarted again" in result.stderr
    assert "exited with code 3 before it started serving" in result.stderr
    # The worker's own error output passes through, and the final error repeats it.
    assert result.stderr.count("sitecustomize: this worker refuses to start") > RESTART_TRIES
    assert result.stderr.splitlines()[-1] == (
        "wool: error: every worker has exited and none can be restarted; stopping"
    )
    assert await listed(ns) == []


async def test_sigterm_to_the_whole_process_group_keeps_the_grace():
    """Calls of 3 s, longer than the 2 s the worker processes used to give themselves."""
    calls = 4
    started = 0
    all_started = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal started
        await reader.readline()
        started += 1
        if started == calls:
            all_started.set()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ns = namespace()
    args = ["worker", "--size", "2", "--namespace", ns, "--grace", "5"]
    try:
        async with running(*args, own_group=True) as command:
            workers = await command.ready()
            async with wool.WorkerPool(discovery=wool.LocalDiscovery(ns)) as pool:
                assert pool.proxy is not None
                await pool.proxy.wait_for([w.uid for w in workers], timeout=BOUND)
                tasks = [asyncio.ensure_future(cli_routines.slow(port, 3.0)) for _ in range(calls)]
                async with asyncio.timeout(BOUND):
                    await all_started.wait()
                # As systemd (KillMode=control-group) or `kill -- -PGID` does.
                os.killpg(command.process.pid, signal.SIGTERM)
                async with asyncio.timeout(BOUND):
                    served = await asyncio.gather(*tasks)
            result = await command.finish()
    finally:
        server.close()
        await server.wait_closed()
    assert set(served) == {w.pid for w in workers}
    assert result.returncode == 0, result.stderr
    assert "SIGTERM: stopping 2 workers (grace 5 s" in result.stdout
    assert result.stdout.splitlines()[-1] == "stopped"
    assert result.stderr == ""
    assert not any(alive(w.pid) for w in workers)
    assert await listed(ns) == []
