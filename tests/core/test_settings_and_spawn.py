"""The settings object and the spawn protocol, without processes: a fast unit layer."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from wool import _settings
from wool._supervisor_spawn import (
    WorkerConfig,
    describe_exit,
    encode_config,
    read_config,
    stop_request,
)


def test_settings_read_the_message_limit_from_the_environment():
    assert _settings.Settings.from_environment({}).max_message_bytes == 512 * 1024 * 1024
    limit = _settings.Settings.from_environment({"WOOL_MAX_MESSAGE_BYTES": "262144"})
    assert limit.max_message_bytes == 262144


@pytest.mark.parametrize(
    ("raw", "problem"),
    [("lots", "must be a number of bytes, got 'lots'"), ("1000", "must be at least 131072")],
)
def test_a_bad_message_limit_is_refused_by_name(raw: str, problem: str):
    with pytest.raises(ValueError, match="WOOL_MAX_MESSAGE_BYTES " + problem):
        _settings.Settings.from_environment({"WOOL_MAX_MESSAGE_BYTES": raw})


def test_override_changes_the_one_settings_object_for_a_block():
    from wool._transport import max_message_bytes, peer_limit

    before = _settings.current()
    with _settings.override(max_message_bytes=300_000) as changed:
        assert _settings.current() is changed and max_message_bytes() == 300_000
        assert peer_limit((("wool-max-message", "400000"),)) == 300_000
    assert _settings.current() is before


def test_a_config_travels_through_the_pipe_as_written():
    config = WorkerConfig(
        tags=frozenset({"gpu"}),
        host="127.0.0.1",
        credentials=None,
        sys_path=("/somewhere",),
        uid="worker-x",
        settings=_settings.Settings(max_message_bytes=300_000),
        grace=7.5,
        port=4321,
    )
    read, write = os.pipe()
    try:
        os.write(write, encode_config(config))
        assert read_config(read) == config
        os.write(write, encode_config(config)[:5])
        os.close(write)
        write = -1
        with pytest.raises(EOFError, match="before sending the worker configuration"):
            read_config(read)
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)


@pytest.mark.parametrize(
    ("lines", "grace"),
    [
        (b"stop 5\n", 5.0),
        (b"stop 0.25\n", 0.25),
        (b"", 0.0),  # end of file: the parent is gone
        (b"garbage\nstop\nstop x\nstop 3\n", 3.0),  # malformed lines are skipped
        (b"stop -4\n", 0.0),
    ],
)
async def test_the_stop_line_gives_the_grace(lines: bytes, grace: float):
    reader = asyncio.StreamReader()
    reader.feed_data(lines)
    reader.feed_eof()
    assert await stop_request(reader) == grace


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0, "exited with code 0"),
        (3, "exited with code 3"),
        (-signal.SIGKILL, "was killed by SIGKILL"),
        (-signal.SIGTERM, "was stopped by SIGTERM"),
        (-signal.SIGSEGV, "was killed by SIGSEGV"),
    ],
)
def test_an_exit_is_described_by_code_or_signal(code: int, text: str):
    assert describe_exit(code) == text


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
def test_the_wildcard_rule_is_the_same_for_a_pool_and_a_worker(host: str):
    import wool
    from wool._worker_server import WorkerServer

    with pytest.raises(ValueError, match="advertise='198.18.0.2'") as from_pool:
        wool.WorkerPool(size=1, host=host)
    with pytest.raises(ValueError) as from_worker:
        WorkerServer(host=host)
    assert str(from_pool.value) == str(from_worker.value)
    pool = wool.WorkerPool(size=1, host=host, advertise="198.18.0.2", insecure=True)
    assert pool.advertise == "198.18.0.2"
