"""Safe defaults: loopback binding, and a loud warning when a worker is exposed."""

from __future__ import annotations

import logging

import pytest

import wool
from wool._worker import Worker

WARNING = "anyone who can reach this port can run arbitrary code"


def _security_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wool.worker" and WARNING in r.getMessage()]


async def _start_stop(worker: Worker) -> wool.WorkerMetadata:
    metadata = await worker.start()
    try:
        return metadata
    finally:
        await worker.stop(0)


async def test_worker_binds_loopback_by_default(caplog):
    caplog.set_level(logging.WARNING, logger="wool")
    worker = Worker()
    assert worker.host == "127.0.0.1"
    metadata = await _start_stop(worker)
    assert metadata.host == "127.0.0.1" and not metadata.secure
    assert _security_warnings(caplog) == []


async def test_pool_workers_bind_loopback_by_default():
    pool = wool.WorkerPool(size=1)
    assert pool.host == "127.0.0.1"


async def test_plaintext_worker_on_all_interfaces_warns_prominently(caplog):
    caplog.set_level(logging.WARNING, logger="wool")
    metadata = await _start_stop(Worker(host="0.0.0.0", advertise="127.0.0.1"))
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
    worker = Worker(
        host="0.0.0.0", advertise="127.0.0.1", credentials=pki.credentials(mutual=False)
    )
    await _start_stop(worker)
    [record] = _security_warnings(caplog)
    assert "with one-way TLS only" in record.getMessage()


async def test_mutual_tls_worker_on_all_interfaces_does_not_warn(pki, caplog):
    caplog.set_level(logging.WARNING, logger="wool")
    worker = Worker(host="0.0.0.0", advertise="127.0.0.1", credentials=pki.credentials())
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
