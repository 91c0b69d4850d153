"""Safe defaults: unix sockets of this user, a refusal to listen off loopback without
mutual TLS unless asked to, and a loud warning when a worker is exposed anyway."""

from __future__ import annotations

import asyncio
import logging
import socket
import stat
import sys
from pathlib import Path

import pytest

import wool
import wool.plugins
from wool import _unix_socket
from wool._worker_server import WorkerServer

WARNING = "anyone who can reach this port can run arbitrary code"


def _security_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wool.worker" and WARNING in r.getMessage()]


async def _start_stop(worker: WorkerServer) -> wool.WorkerMetadata:
    metadata = await worker.start()
    try:
        return metadata
    finally:
        await worker.stop(0)


async def test_worker_listens_on_a_private_unix_socket_by_default(caplog):
    caplog.set_level(logging.WARNING, logger="wool")
    worker = WorkerServer()
    metadata = await worker.start()
    try:
        socket = Path(metadata.address.removeprefix("unix:"))
        assert metadata.address.startswith("unix:") and not metadata.secure
        assert (metadata.host, metadata.port) == ("", 0)
        assert stat.S_ISSOCK((await asyncio.to_thread(socket.lstat)).st_mode)
        assert socket.parent == wool.plugins.private_directory()
    finally:
        await worker.stop(0)
    assert not await asyncio.to_thread(socket.exists)
    assert _security_warnings(caplog) == []


async def test_pool_workers_listen_on_unix_sockets_by_default():
    async with wool.WorkerPool(size=1) as pool:
        [worker] = pool.workers
        assert worker.metadata is not None
        assert worker.metadata.address.startswith("unix:")


@pytest.mark.parametrize("host", ["0.0.0.0", "198.18.0.2", "::"])
def test_a_plaintext_worker_off_loopback_is_refused_without_insecure(host):
    with pytest.raises(ValueError, match="insecure=True"):
        WorkerServer(host=host, advertise="127.0.0.1")
    with pytest.raises(ValueError, match="refusing to listen on .* without TLS credentials"):
        wool.WorkerPool(size=1, host=host, advertise="127.0.0.1")


def test_a_one_way_tls_worker_off_loopback_is_refused_without_insecure(pki):
    with pytest.raises(ValueError, match="with one-way TLS only"):
        WorkerServer(
            host="0.0.0.0", advertise="127.0.0.1", credentials=pki.credentials(mutual=False)
        )


async def test_plaintext_worker_on_all_interfaces_warns_prominently(caplog):
    caplog.set_level(logging.WARNING, logger="wool")
    metadata = await _start_stop(WorkerServer(host="0.0.0.0", advertise="127.0.0.1", insecure=True))
    [record] = _security_warnings(caplog)
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("SECURITY WARNING")
    assert f"0.0.0.0:{metadata.port}" in message
    assert metadata.uid in message
    assert "without TLS credentials" in message
    assert "mutual" in message and "127.0.0.1" in message  # what to do about it


async def test_one_way_tls_worker_on_all_interfaces_warns_too(pki, caplog):
    """One-way TLS authenticates the worker, not its callers: still open to anyone."""
    caplog.set_level(logging.WARNING, logger="wool")
    worker = WorkerServer(
        host="0.0.0.0",
        advertise="127.0.0.1",
        credentials=pki.credentials(mutual=False),
        insecure=True,
    )
    await _start_stop(worker)
    [record] = _security_warnings(caplog)
    assert "with one-way TLS only" in record.getMessage()


async def test_mutual_tls_worker_on_all_interfaces_does_not_warn(pki, caplog):
    caplog.set_level(logging.WARNING, logger="wool")
    worker = WorkerServer(host="0.0.0.0", advertise="127.0.0.1", credentials=pki.credentials())
    await _start_stop(worker)
    assert _security_warnings(caplog) == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts_are_recognised(host):
    from wool._addresses import is_loopback

    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "198.18.0.2", "example.test"])
def test_other_hosts_count_as_exposed(host):
    from wool._addresses import is_loopback

    assert not is_loopback(host)


async def test_the_socket_of_a_killed_worker_is_removed_by_the_next_worker_to_start():
    directory = wool.plugins.private_directory()
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    stale = directory / f"worker-killed.{gone.pid}.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(stale))  # a socket file nobody removed, like a SIGKILLed worker's
    worker = WorkerServer()
    await worker.start()
    try:
        assert not stale.exists()
    finally:
        await worker.stop(0)


def test_a_socket_path_too_long_for_the_kernel_is_refused(monkeypatch, tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True, mode=0o700)
    monkeypatch.setenv(wool.plugins.DIRECTORY_VARIABLE, str(deep))
    with pytest.raises(ValueError, match="unix sockets take at most 107"):
        _unix_socket.socket_path("worker-x")
