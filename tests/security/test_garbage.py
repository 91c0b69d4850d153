"""Frames from a peer that is not a wool caller get a clean error; the worker serves on.

A raw gRPC client (no wool code on the caller's side) opens ``/wool.v1.Worker/Session``
on a real worker process and sends bytes of its choosing. Meanwhile a normal wool caller
keeps a generator call open on the same worker, and must see it continue undisturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
from collections.abc import AsyncIterator

import attrs
import cloudpickle
import grpc
import grpc.aio
import pytest

import wool
from tests.security import routines as r
from tests.security.helpers import BOUND, WOOL_METADATA, caller, published, worker_process
from tests.support.directory_discovery import DirectoryDiscovery
from wool._serialization import decode_exception
from wool._transport import PROTOCOL_HEADER, SESSION_METHOD
from wool._wire import worker_pb2 as pb


@attrs.frozen
class Outcome:
    responses: list[pb.Response]
    code: grpc.StatusCode
    details: str


async def exchange(
    address: str, *messages: bytes, expect: int = 0, metadata=WOOL_METADATA
) -> Outcome:
    """Send ``messages`` as raw Session messages; keep the stream open until ``expect``
    response frames arrived, then half-close and collect the final status."""
    enough = asyncio.Event()
    if expect == 0:
        enough.set()

    async def requests() -> AsyncIterator[bytes]:
        # Write only once the worker answered the session (as wool's caller does): a write
        # racing the worker's immediate refusal makes grpc report INTERNAL, not the status.
        await call.initial_metadata()
        for message in messages:
            yield message
        await enough.wait()

    responses: list[pb.Response] = []
    async with grpc.aio.insecure_channel(address) as channel:
        method = channel.stream_stream(
            SESSION_METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        call = method(requests(), metadata=metadata)
        with contextlib.suppress(grpc.aio.AioRpcError):
            async for raw in call:
                responses.extend(pb.Responses.FromString(raw).frames)
                if len(responses) >= expect:
                    enough.set()
        return Outcome(responses, await call.code(), await call.details() or "")


def batch(*requests: pb.Request) -> bytes:
    return pb.Requests(frames=list(requests)).SerializeToString()


def start(task: pb.Task, call: int = 1) -> bytes:
    return batch(pb.Request(call=call, start=task))


@pytest.fixture
async def serving(discovery, tmp_path):
    """A plaintext worker process, a wool caller using it, and a generator call in flight.

    Yields the worker's metadata and the open generator; on exit checks that the generator
    went on undisturbed and that a fresh call still works.
    """
    async with (
        asyncio.timeout(BOUND),
        worker_process() as worker,
        published(discovery, worker),
        caller(discovery, None, worker.uid),
    ):
        numbers = r.count_up(1000)
        assert await anext(numbers) == 0
        yield worker
        assert await anext(numbers) == 1, "the other caller's call was disturbed"
        await numbers.aclose()
        assert await r.add(40, 2) == 42, "the worker stopped serving"


def valid_task(tmp_path, **overrides: bytes | str | bool) -> pb.Task:
    proxy = wool.CallerProxy(
        DirectoryDiscovery(tmp_path / "unused").subscriber, wool.RoundRobinLoadBalancer()
    )
    fields = {
        "id": "raw-task",
        "routine": "add",
        "callable": cloudpickle.dumps(r.add),
        "arguments": cloudpickle.dumps(((1, 2), {})),
        "proxy": cloudpickle.dumps(proxy),
    }
    fields.update(overrides)
    return pb.Task(**fields)  # type: ignore[arg-type]


async def test_bytes_that_are_not_a_protobuf_get_invalid_argument(serving):
    outcome = await exchange(serving.address, b"\xff\xff\xff\xff this is not a protobuf")
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed frame" in outcome.details
    assert outcome.responses == []


async def test_missing_protocol_metadata_gets_failed_precondition(serving):
    outcome = await exchange(serving.address, batch(), metadata=())
    assert outcome.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "wool protocol version mismatch" in outcome.details
    assert "speaks none" in outcome.details


async def test_another_protocol_version_gets_failed_precondition(serving):
    outcome = await exchange(serving.address, batch(), metadata=((PROTOCOL_HEADER, "999"),))
    assert outcome.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "speaks 999" in outcome.details


GARBAGE_TASKS = {
    "callable-not-a-pickle": ({"callable": b"\x80\x05garbage"}, pickle.UnpicklingError),
    "arguments-not-a-pickle": ({"arguments": b"junk"}, pickle.UnpicklingError),
    "arguments-not-a-pair": ({"arguments": pickle.dumps("just a string")}, ValueError),
    "proxy-empty": ({"proxy": b""}, EOFError),
    "proxy-not-a-proxy": ({"proxy": pickle.dumps(42)}, TypeError),
    "callable-not-callable": ({"callable": pickle.dumps(42)}, TypeError),
}


@pytest.mark.parametrize("name", GARBAGE_TASKS)
async def test_malformed_task_gets_an_error_frame(serving, tmp_path, name):
    overrides, expected = GARBAGE_TASKS[name]
    outcome = await exchange(serving.address, start(valid_task(tmp_path, **overrides)), expect=1)
    assert outcome.code == grpc.StatusCode.OK, outcome.details
    frames = [f for f in outcome.responses if f.WhichOneof("frame") != "accepted"]
    [error] = frames
    assert error.call == 1 and error.WhichOneof("frame") == "error"
    exc = decode_exception(error.error, routine="add", worker=serving.uid)
    # What the worker could not decode arrives as itself, or (for the pickled parts) as an
    # UnpicklingError that says which part, caused by it.
    if isinstance(exc, pickle.UnpicklingError) and "could not be unpickled" in str(exc):
        exc = exc.__cause__
    assert isinstance(exc, expected), repr(exc)


async def test_valid_raw_task_runs(serving, tmp_path):
    """Guard for the test above: the same task, unspoiled, is accepted and returns 3."""
    outcome = await exchange(serving.address, start(valid_task(tmp_path)), expect=2)
    kinds = [f.WhichOneof("frame") for f in outcome.responses]
    assert kinds == ["accepted", "value"]
    assert pickle.loads(outcome.responses[1].value) == 3


async def test_unknown_generator_step_gets_an_error_frame(serving, tmp_path):
    task = valid_task(
        tmp_path,
        routine="count_up",
        callable=cloudpickle.dumps(r.count_up),
        arguments=cloudpickle.dumps(((5,), {})),
        generator=True,
    )
    step = batch(pb.Request(call=1, step=pb.Step(kind=99)))  # type: ignore[arg-type]
    outcome = await exchange(serving.address, start(task), step, expect=2)
    assert outcome.code == grpc.StatusCode.OK, outcome.details
    kinds = [f.WhichOneof("frame") for f in outcome.responses]
    assert kinds == ["accepted", "error"]
    exc = decode_exception(outcome.responses[1].error, routine="count_up", worker=serving.uid)
    assert isinstance(exc, ValueError) and "unknown generator step kind 99" in str(exc)


async def test_frames_for_unknown_calls_are_ignored(serving):
    frames = batch(
        pb.Request(call=7, step=pb.Step(kind=pb.Step.NEXT)),
        pb.Request(call=8, cancel=pb.Cancel()),
        pb.Request(call=9),
    )
    outcome = await exchange(serving.address, frames)
    assert outcome.code == grpc.StatusCode.OK, outcome.details
    assert outcome.responses == []
