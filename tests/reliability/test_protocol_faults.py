"""Protocol faults on a real worker: another protocol version, garbage and truncated
frames, frames that make no sense. Each gets a clear answer and the worker keeps serving."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest

import wool
from tests.reliability import routines as r
from tests.reliability.support import (
    RawOutcome,
    proxy_bytes,
    raw_session,
    request_batch,
    step,
    task_batch,
    values,
)
from wool._transport import PROTOCOL_VERSION
from wool._wire import worker_pb2 as pb
from wool._worker_server import WorkerServer

BOUND = 10.0


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    """A channel to a real worker, served in this process on 127.0.0.1."""
    worker = WorkerServer()
    metadata = await worker.start()
    try:
        async with grpc.aio.insecure_channel(metadata.address) as channel:
            yield channel
    finally:
        await worker.stop(0)


async def assert_serves(channel: grpc.aio.Channel) -> None:
    """A well-formed call on a new session still works."""
    outcome = await raw_session(
        channel, [task_batch(1, r.add, (2, 3), proxy=proxy_bytes())], timeout=BOUND
    )
    assert outcome.code == grpc.StatusCode.OK, outcome
    assert [f.WhichOneof("frame") for f in outcome.frames] == ["accepted", "value"]
    assert values(outcome, 1) == [5]


@pytest.mark.parametrize("version", ["999", "0", None])
async def test_another_protocol_version_is_refused_naming_both_versions(channel, version):
    outcome = await raw_session(channel, [], version=version, timeout=BOUND)
    assert outcome.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "protocol version" in outcome.details
    assert f"speaks {version or 'none'}" in outcome.details
    assert f"speaks {PROTOCOL_VERSION}" in outcome.details
    await assert_serves(channel)


async def test_a_caller_of_another_protocol_version_gets_a_clear_error(monkeypatch):
    """Through the whole caller: the version error reaches the user, not a hang."""
    import wool._caller_connection
    import wool._transport

    monkeypatch.setattr(wool._transport, "PROTOCOL_VERSION", "999")
    monkeypatch.setattr(wool._caller_connection, "PROTOCOL_VERSION", "999", raising=False)
    async with wool.WorkerPool(size=1, wait_for_workers=BOUND):
        async with asyncio.timeout(BOUND):
            with pytest.raises(wool.NoWorkersAvailable) as info:
                await r.add(1, 2)
    message = str(info.value)
    assert "FAILED_PRECONDITION" in message
    assert "caller speaks 999" in message and f"speaks {PROTOCOL_VERSION}" in message


GARBAGE = {
    "random-bytes": [b"\xff\xfe\xfd garbage \x00\x01"],
    "truncated-batch": [task_batch(1, r.add, (1, 2), proxy=b"p")[:-7]],
    "truncated-length-prefix": [b"\x0a\xff\xff\xff\x0f\x08"],
    "valid-then-garbage": [
        request_batch(pb.Request(call=9, cancel=pb.Cancel())),
        b"\x0a\x05\x08\x01\x12",
    ],
}


@pytest.mark.parametrize("batches", GARBAGE.values(), ids=GARBAGE.keys())
async def test_a_garbage_or_truncated_frame_gets_an_error_status(channel, batches):
    outcome = await raw_session(channel, batches, timeout=BOUND)
    assert not outcome.timed_out
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, outcome
    assert "malformed frame" in outcome.details


@pytest.mark.parametrize("batches", GARBAGE.values(), ids=GARBAGE.keys())
async def test_a_garbage_or_truncated_frame_ends_only_its_session(channel, batches):
    outcome = await raw_session(channel, batches, timeout=BOUND)
    assert not outcome.timed_out, "the worker did not end a session that sent garbage"
    await assert_serves(channel)


async def test_a_garbage_frame_does_not_disturb_calls_on_other_sessions(channel):
    """A generator call is half way through on one session when another sends garbage."""
    outgoing: asyncio.Queue[bytes | None] = asyncio.Queue()
    method = channel.stream_stream(
        "/wool.v1.Worker/Session",
        request_serializer=lambda b: b,
        response_deserializer=pb.Responses.FromString,
    )

    async def requests():
        while (batch := await outgoing.get()) is not None:
            yield batch

    outgoing.put_nowait(task_batch(1, r.count_up, (3,), generator=True, proxy=proxy_bytes()))
    outgoing.put_nowait(request_batch(step(1)))
    call = method(requests(), metadata=(("wool-protocol", PROTOCOL_VERSION),))
    kinds: list[str] = []
    items: list[object] = []
    async with asyncio.timeout(BOUND):
        async for batch in call:
            for frame in batch.frames:
                kinds.append(frame.WhichOneof("frame"))
                if kinds[-1] == "value":
                    items.append(wool._serialization.loads(frame.value))
                    if len(items) == 1:  # the generator is suspended: now the garbage
                        garbage = await raw_session(channel, [b"\xff" * 64], timeout=BOUND)
                        assert garbage.code == grpc.StatusCode.INVALID_ARGUMENT
                    outgoing.put_nowait(request_batch(step(1)))
                elif kinds[-1] == "stopped":
                    outgoing.put_nowait(None)
    assert kinds == ["accepted", "value", "value", "value", "stopped"] and items == [0, 1, 2]
    assert await call.code() == grpc.StatusCode.OK


NONSENSE = {
    "step-of-unknown-call": [request_batch(step(77))],
    "cancel-of-unknown-call": [request_batch(pb.Request(call=77, cancel=pb.Cancel()))],
    "empty-request": [request_batch(pb.Request(call=3))],
    "empty-batch": [b""],
    "garbage-callable": [
        request_batch(
            pb.Request(call=1, start=pb.Task(id="x", routine="f", callable=b"junk", proxy=b""))
        )
    ],
    "duplicate-start": [task_batch(1, r.add, (1, 2), proxy=b"P") * 2],
}


@pytest.mark.parametrize("batches", NONSENSE.values(), ids=NONSENSE.keys())
async def test_well_formed_but_senseless_frames_are_answered_or_ignored(channel, batches):
    outcome = await raw_session(channel, batches, timeout=BOUND)
    assert not outcome.timed_out and outcome.code == grpc.StatusCode.OK, outcome
    await assert_serves(channel)


async def test_a_task_that_cannot_be_decoded_is_answered_with_an_error(channel):
    start = pb.Task(id="x", routine="f", callable=b"not a pickle", proxy=b"")
    outcome = await raw_session(channel, [request_batch(pb.Request(call=1, start=start))])
    assert [f.WhichOneof("frame") for f in outcome.frames] == ["error"]
    error = wool._serialization.decode_exception(outcome.frames[0].error, routine="f", worker="")
    assert isinstance(error, pickle.UnpicklingError)
    assert "the routine of routine f() could not be unpickled on worker" in str(error)
    await assert_serves(channel)


async def test_a_step_of_an_unknown_kind_gets_an_answer(channel):
    outcome = await raw_session(
        channel,
        [
            task_batch(1, r.count_up, (3,), generator=True, proxy=proxy_bytes()),
            request_batch(step(1, kind=7)),
        ],
        timeout=3.0,
    )
    assert _kinds(outcome) == ["accepted", "error"], outcome
    error = wool._serialization.decode_exception(
        outcome.frames[1].error, routine="count_up", worker=""
    )
    assert isinstance(error, ValueError)
    assert "unknown generator step kind 7" in str(error)
    await assert_serves(channel)


def _kinds(outcome: RawOutcome) -> list[str]:
    return [f.WhichOneof("frame") for f in outcome.frames]


def _slot_start(call: int, slot: int, function: object, args: tuple) -> pb.Request:
    callable = wool._serialization.dumps_routine(function) if function else b""  # type: ignore[arg-type]
    arguments = wool._serialization.dumps((args, {}))
    start = pb.Task(
        id=f"slot-{call}",
        routine="add",
        callable=callable,
        routine_slot=slot,
        arguments=arguments,
        proxy=proxy_bytes(),
    )
    return pb.Request(call=call, start=start)


async def test_a_routine_sent_once_serves_later_calls_that_name_its_slot(channel):
    outcome = await raw_session(
        channel,
        [
            request_batch(_slot_start(1, 3, r.add, (1, 2))),
            request_batch(_slot_start(2, 3, None, (10, 20)), _slot_start(3, 3, None, (5, 5))),
        ],
    )
    results = {
        f.call: wool._serialization.loads(f.value)
        for f in outcome.frames
        if f.WhichOneof("frame") == "value"
    }
    assert results == {1: 3, 2: 30, 3: 10}, outcome


@pytest.mark.parametrize(
    "slot, expected", [(9, "routine slot 9, never filled"), (100_000, "out of range")]
)
async def test_a_call_naming_a_routine_slot_never_filled_gets_an_error(channel, slot, expected):
    outcome = await raw_session(channel, [request_batch(_slot_start(1, slot, None, (1, 2)))])
    assert [f.WhichOneof("frame") for f in outcome.frames] == ["error"], outcome
    error = wool._serialization.decode_exception(outcome.frames[0].error, routine="add", worker="")
    assert "the routine of routine add() could not be unpickled" in str(error)
    assert expected in str(error.__cause__ or error)
    await assert_serves(channel)
