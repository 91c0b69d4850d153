"""Fuzzing the worker's wire decoder: random and mutated frames on raw Session streams,
over gRPC and over the worker's session socket (each example draws which).

Shared by the fast suite (``test_fuzz.py``, a few dozen examples) and the soak (many
more). The worker is a real worker process; after every example it must still be alive
and answer a well-formed call on a new session within a bound. Each example's own wait
is bounded too: a session that the worker leaves open (say a mutated frame started a
generator that nobody steps) is cancelled, as a caller would.
"""

from __future__ import annotations

import asyncio
import collections
import pickletools
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import grpc
import grpc.aio
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.reliability import routines as r
from tests.reliability.support import (
    RawOutcome,
    proxy_bytes,
    raw_session,
    raw_socket_session,
    request_batch,
    step,
    task_batch,
    values,
)
from wool import _serialization, _unix_socket
from wool._supervisor_spawn import WorkerProcess
from wool._wire import worker_pb2 as pb

EXAMPLE_SECONDS = 3.0
"""How long one example's session may stay open before it is cancelled."""
HEALTH_SECONDS = 30.0
"""How long the worker may take to answer the well-formed call after an example."""


def valid_sessions() -> list[list[bytes]]:
    """Well-formed sessions (lists of batches) that the mutations start from."""
    proxy = proxy_bytes()
    add = task_batch(1, r.add, (1, 2), proxy=proxy)
    stream = task_batch(2, r.count_up, (3,), generator=True, proxy=proxy)
    return [
        [add],
        [add, request_batch(pb.Request(call=1, cancel=pb.Cancel()))],
        [stream, request_batch(step(2)), request_batch(step(2, pb.Step.CLOSE))],
        [stream + request_batch(step(2))],
        [
            stream,
            request_batch(step(2)),
            request_batch(step(2, pb.Step.SEND, _serialization.dumps(5))),
            request_batch(step(2, pb.Step.THROW, _serialization.dumps(ValueError("x")))),
        ],
        [task_batch(3, r.echo, ("x" * 300,), proxy=proxy)],
    ]


MUTATIONS = ("flip", "set", "delete", "insert", "truncate", "duplicate", "split", "join")


@st.composite
def sessions(draw: st.DrawFn, bases: list[list[bytes]]) -> list[bytes]:
    """Random bytes, or a well-formed session damaged by a few mutations."""
    if draw(st.booleans()) and draw(st.booleans()):  # a quarter: pure noise
        return draw(st.lists(st.binary(min_size=0, max_size=600), min_size=1, max_size=3))
    batches = [bytearray(b) for b in draw(st.sampled_from(bases))]
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        index = draw(st.integers(min_value=0, max_value=len(batches) - 1))
        data = batches[index]
        where = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        mutation = draw(st.sampled_from(MUTATIONS))
        if mutation == "flip" and data:
            data[where] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif mutation == "set" and data:
            data[where] = draw(st.integers(min_value=0, max_value=255))
        elif mutation == "delete":
            del data[where : where + draw(st.integers(min_value=1, max_value=16))]
        elif mutation == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=16))
        elif mutation == "truncate":
            del data[where:]
        elif mutation == "duplicate":
            data[where:where] = data[where : where + draw(st.integers(1, 64))]
        elif mutation == "split" and len(data) > 1:
            batches[index : index + 1] = [data[:where], data[where:]]
        elif mutation == "join" and len(batches) > 1:
            other = batches.pop(index - 1 if index else 1)
            batches[index - 1 if index else 0] = data + other if index else other + data
    return [bytes(b) for b in batches]


_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def _pickles(batch: bytes) -> Iterator[bytes]:
    """The pickles the worker would load from ``batch`` (none if it is no message)."""
    try:
        frames = pb.Requests.FromString(batch).frames
    except DecodeError:
        return
    for request in frames:
        task = request.start
        yield from (task.callable, task.arguments, task.proxy, task.context)
        yield from (request.step.value, request.context)


def memo_bomb(data: bytes) -> bool:
    """Whether pickle ``data`` names a memo slot beyond its own length.

    The unpickler grows its memo to any index it is given (a 4-byte index asks for
    gigabytes), a property of pickle, not of wool's decoder: a caller can run any code on
    a worker anyway (README, Threat model). The fuzzer leaves such examples out.
    """
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in _MEMO_PUTS and int(arg) > len(data):
                return True
    except Exception:  # unreadable from here on: the unpickler stops here too
        return False
    return False


@attrs.define
class FuzzReport:
    examples: int = 0
    on_socket: int = 0
    """Examples sent on the session socket (the others on gRPC)."""
    cancelled: int = 0
    """Sessions still open after EXAMPLE_SECONDS (cancelled by the fuzzer)."""
    statuses: collections.Counter[str] = attrs.field(factory=collections.Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "examples": self.examples,
            "on the session socket": self.on_socket,
            "cancelled": self.cancelled,
            "statuses": dict(sorted(self.statuses.items())),
        }


class Transports:
    """A worker's two ways in: its gRPC channel and its session socket."""

    def __init__(self, channel: grpc.aio.Channel, socket: Path) -> None:
        self.channel = channel
        self.socket = socket

    async def session(self, batches: list[bytes], on_socket: bool, timeout: float) -> RawOutcome:  # noqa: ASYNC109 (the outcome records a timeout)
        if on_socket:
            return await raw_socket_session(self.socket, batches, timeout=timeout)
        return await raw_session(self.channel, batches, timeout=timeout)


async def healthy(transports: Transports, worker: WorkerProcess) -> None:
    """The worker is alive and answers a well-formed call on a new session, both ways."""
    assert worker.process is not None and worker.process.returncode is None, (
        f"the worker died (exit code {worker.process and worker.process.returncode})"
    )
    for on_socket in (False, True):
        outcome = await transports.session(
            [task_batch(1, r.add, (20, 22), proxy=proxy_bytes())], on_socket, HEALTH_SECONDS
        )
        assert not outcome.timed_out, "the worker did not answer a well-formed call: it hangs"
        assert outcome.code == grpc.StatusCode.OK and values(outcome, 1) == [42], outcome


def run_fuzz(
    max_examples: int, *, progress: Callable[[FuzzReport], None] | None = None
) -> FuzzReport:
    """Fuzz a real worker process with ``max_examples`` examples; raises on a failure."""
    report = FuzzReport()
    with asyncio.Runner() as runner:
        worker = WorkerProcess()
        metadata = runner.run(worker.start())
        channel = grpc.aio.insecure_channel(metadata.address)
        path = _unix_socket.path_of(metadata.address)
        socket = _unix_socket.session_socket(path) if path is not None else None
        assert socket is not None, f"the worker at {metadata.address} has no session socket"
        transports = Transports(channel, socket)
        try:
            runner.run(healthy(transports, worker))
            bases = valid_sessions()

            @settings(
                max_examples=max_examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(sessions(bases), st.booleans())
            def example(batches: list[bytes], on_socket: bool) -> None:
                assume(not any(memo_bomb(p) for b in batches for p in _pickles(b)))
                outcome: RawOutcome = runner.run(
                    transports.session(batches, on_socket, EXAMPLE_SECONDS)
                )
                report.examples += 1
                report.on_socket += on_socket
                if outcome.timed_out:
                    report.cancelled += 1
                    report.statuses["(cancelled)"] += 1
                else:
                    report.statuses[outcome.code.name if outcome.code else "?"] += 1
                try:
                    runner.run(healthy(transports, worker))
                except AssertionError as exc:
                    # Hypothesis may not manage to replay it (a worker that crashed fails
                    # differently the second time): name what was sent, to replay by hand.
                    way = "the session socket" if on_socket else "gRPC"
                    raise AssertionError(f"{exc}\nafter the session on {way} {batches!r}") from None
                if progress is not None:
                    progress(report)

            example()
        finally:
            runner.run(channel.close())
            runner.run(worker.stop(0))
    return report
