"""`wool workers`: the workers a discovery sees, listed or followed."""

from __future__ import annotations

import json
import signal

import pytest

from tests.cli.helpers import listed, namespace, run, running


async def test_the_table_shows_every_worker():
    ns = namespace()
    async with running("worker", "--size", "2", "--namespace", ns, "--tag", "gpu") as command:
        workers = await command.ready()
        result = await run("workers", "--namespace", ns)
        command.send_signal(signal.SIGTERM)
        assert (await command.finish()).returncode == 0
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["UID", "ADDRESS", "TAGS", "PID", "VERSION", "SECURE"]
    assert sorted(row.split() for row in rows) == sorted(
        [w.uid, w.address, "gpu", str(w.pid), _core_version(), "no"] for w in workers
    )


async def test_no_workers_is_an_empty_list_and_a_note():
    ns = namespace()
    assert await listed(ns) == []
    result = await run("workers", "--namespace", ns, "--wait", "0.2")
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == (
        f"wool: no workers found through local discovery (namespace {ns!r}) within 0.2 s"
    )


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
async def test_watch_shows_workers_added_and_dropped(as_json):
    ns = namespace()
    watch_args = ["workers", "--namespace", ns, "--watch"] + (["--json"] if as_json else [])
    async with running("worker", "--size", "1", "--namespace", ns) as command:
        [worker] = await command.ready()
        async with running(*watch_args) as watch:
            added = await _event_line(watch)
            command.send_signal(signal.SIGTERM)
            dropped = await _event_line(watch)
            assert (await command.finish()).returncode == 0
            watch.send_signal(signal.SIGINT)
            result = await watch.finish()
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    if as_json:
        record = {
            "uid": worker.uid,
            "address": worker.address,
            "pid": worker.pid,
            "version": _core_version(),
            "tags": [],
            "secure": False,
        }
        assert json.loads(added) == {"type": "worker-added", "metadata": record}
        assert json.loads(dropped) == {"type": "worker-dropped", "metadata": record}
    else:
        rest = f"{worker.uid} {worker.address} pid={worker.pid} tags=-"
        assert added.startswith(f"worker-added {rest}")
        assert dropped.startswith(f"worker-dropped {rest}")


async def _event_line(watch) -> str:
    """The next line of `wool workers --watch` about discovery (load lines skipped)."""
    while True:
        line = await watch.line()
        if not line.startswith(("load ", '{"type": "load"')):
            return line


async def test_tag_filter():
    ns = namespace()
    async with running("worker", "--size", "1", "--namespace", ns, "--tag", "gpu") as gpu:
        [tagged] = await gpu.ready()
        async with running("worker", "--size", "1", "--namespace", ns) as plain:
            [untagged] = await plain.ready()
            everything = await run("workers", "--namespace", ns, "--json")
            only_gpu = await run("workers", "--namespace", ns, "--json", "--tag", "gpu")
            plain.send_signal(signal.SIGTERM)
            assert (await plain.finish()).returncode == 0
        gpu.send_signal(signal.SIGTERM)
        assert (await gpu.finish()).returncode == 0
    assert {d["uid"] for d in json.loads(everything.stdout)} == {tagged.uid, untagged.uid}
    assert [d["uid"] for d in json.loads(only_gpu.stdout)] == [tagged.uid]


def _core_version() -> str:
    from importlib.metadata import version

    return version("wool-core")


async def test_control_characters_in_records_are_shown_escaped():
    """A record's fields come from another process (or host): an escape sequence or a
    newline in them must not reach the terminal, nor forge a line of the listing."""
    import wool

    ns = namespace()
    forged = wool.WorkerMetadata(
        uid="w\x1b[2J\nworker-fake 10.0.0.1:1",
        address="127.0.0.1:1\r",
        pid=1,
        version="1\u202e0",
        tags={"gpu\x07"},
    )
    async with wool.LocalDiscovery(ns).publisher as publisher:
        await publisher.publish(wool.DiscoveryEvent("worker-added", forged))
        result = await run("workers", "--namespace", ns, "--wait", "0.5")
        async with running("workers", "--namespace", ns, "--watch") as watch:
            line = await watch.line()
            watch.send_signal(signal.SIGINT)
            assert (await watch.finish()).returncode == 0
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.startswith("UID")
    assert rows == [
        "w\\x1b[2J\\nworker-fake 10.0.0.1:1  127.0.0.1:1\\r  gpu\\x07  1    1\\u202e0  no"
    ]
    assert line.startswith("worker-added w\\x1b[2J\\nworker-fake 10.0.0.1:1 127.0.0.1:1\\r ")
    assert line.isprintable()
