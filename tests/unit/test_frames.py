"""The hand-written frame encoder gives, byte for byte, what protobuf gives."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from wool import _frames
from wool._wire import worker_pb2 as pb

TEXT = st.text(max_size=40)  # unicode of every plane, empty included
DATA = st.one_of(
    st.binary(max_size=64),
    st.just(b""),
    st.builds(lambda n, b: b * n, st.integers(1 << 14, 1 << 17), st.binary(min_size=1, max_size=1)),
)
CALLS = st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1))
BUFFERS = st.lists(
    st.builds(pb.Buffer, writable=st.booleans(), digest=DATA, cached=st.booleans()), max_size=3
)


def task_fields():
    return st.fixed_dictionaries(
        {
            "id": TEXT,
            "parent_id": TEXT,
            "routine": TEXT,
            "callable": DATA,
            "arguments": DATA,
            "proxy": DATA,
            "tags": st.lists(TEXT, max_size=5),
            "generator": st.booleans(),
            "context": DATA,
            # one entry at most: protobuf orders several map entries as it likes
            "headers": st.dictionaries(TEXT, TEXT, max_size=1),
            "buffers": BUFFERS,
        }
    )


@settings(max_examples=300, deadline=None)
@given(task_fields())
def test_a_task_encodes_as_protobuf_does(fields):
    pieces = _frames.task_pieces(**fields)
    assert b"".join(pieces) == pb.Task(**fields).SerializeToString()
    assert pieces[1] is fields["arguments"], "the arguments stay a piece of their own"


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(TEXT, TEXT, min_size=2, max_size=6))
def test_a_task_with_several_headers_decodes_to_the_same_headers(headers):
    pieces = _frames.task_pieces(
        id="t", parent_id="", routine="r", callable=b"c", arguments=b"a", proxy=b"p",
        tags=[], generator=False, headers=headers,
    )  # fmt: skip
    assert dict(pb.Task.FromString(b"".join(pieces)).headers) == headers


@settings(max_examples=300, deadline=None)
@given(CALLS, task_fields())
def test_a_start_frame_encodes_as_protobuf_does(call, fields):
    frame = _frames.start_frame(call, _frames.task_pieces(**fields))
    expected = pb.Requests(frames=[pb.Request(call=call, start=pb.Task(**fields))])
    assert b"".join(frame) == expected.SerializeToString()
    assert _frames.frame_size(frame) == len(expected.SerializeToString())


@settings(max_examples=300, deadline=None)
@given(CALLS, DATA, DATA, BUFFERS)
def test_a_value_frame_encodes_as_protobuf_does(call, payload, context, buffers):
    frame = _frames.value_frame(call, payload, context, buffers)
    response = pb.Response(call=call, value=payload, context=context, buffers=buffers)
    expected = pb.Responses(frames=[response])
    assert b"".join(frame) == expected.SerializeToString()
    assert frame[1] is payload, "the payload stays a piece of its own"


RESPONSES = st.one_of(
    st.builds(lambda c, w: pb.Response(call=c, accepted=pb.Accepted(worker=w)), CALLS, TEXT),
    st.builds(
        lambda c, r, t, f: pb.Response(call=c, rejected=pb.Rejected(reason=r, transient=t, full=f)),
        CALLS,
        TEXT,
        st.booleans(),
        st.booleans(),
    ),
    st.builds(lambda c, d: pb.Response(call=c, error=d), CALLS, DATA),
    st.builds(lambda c: pb.Response(call=c, stopped=pb.Stopped()), CALLS),
    st.builds(lambda c: pb.Response(call=c, cancelled=pb.Cancelled()), CALLS),
    st.builds(
        lambda c, m, d: pb.Response(call=c, log=pb.LogRecord(message=m, dropped=d), context=b"x"),
        CALLS,
        TEXT,
        st.integers(0, 2**64 - 1),
    ),
)
REQUESTS = st.one_of(
    st.builds(
        lambda c, k, v: pb.Request(call=c, step=pb.Step(kind=k, value=v)),
        CALLS,
        st.sampled_from(list(pb.Step.Kind.values())),
        DATA,
    ),
    st.builds(
        lambda c, v: pb.Request(call=c, step=pb.Step(), context=v), CALLS, st.binary(max_size=9)
    ),
    st.builds(lambda c: pb.Request(call=c, cancel=pb.Cancel()), CALLS),
    st.builds(lambda c: pb.Request(call=c), CALLS),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(RESPONSES, st.builds(_frames.value_frame, CALLS, DATA, DATA)), max_size=6)
)
def test_a_batch_of_any_frames_is_one_protobuf_batch(frames):
    encoded = [f if isinstance(f, list) else _frames.message_frame(f) for f in frames]
    if not encoded:
        return
    batch = _frames.batch(encoded[0], encoded[1:])
    decoded = pb.Responses.FromString(batch)
    expected = [
        pb.Response.FromString(b"".join(f)[_header_length(b"".join(f)) :])
        if isinstance(f, list)
        else f
        for f in frames
    ]
    assert list(decoded.frames) == expected


@settings(max_examples=200, deadline=None)
@given(REQUESTS)
def test_a_message_frame_is_one_frame_of_a_batch(request):
    assert _frames.message_frame(request) == pb.Requests(frames=[request]).SerializeToString()


@given(st.integers(0, 2**64 - 1))
def test_varint_matches_protobuf(value):
    encoded = pb.Request(call=value).SerializeToString()
    assert (b"\x08" + _frames.varint(value) if value else b"") == encoded


def _header_length(frame: bytes) -> int:
    """Bytes of a frame's key and length, before the Response message itself."""
    position = 1
    while frame[position] & 0x80:
        position += 1
    return position + 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=30), st.integers(1, 2000))
def test_batches_keep_every_frame_whole_in_order_and_under_the_limit(sizes, limit):
    frames = [
        _frames.message_frame(pb.Response(call=i + 1, error=b"x" * n)) for i, n in enumerate(sizes)
    ]

    async def collect() -> list[bytes]:
        outbox: asyncio.Queue[_frames.Frame | None] = asyncio.Queue()
        for frame in frames:
            outbox.put_nowait(frame)
        outbox.put_nowait(None)
        return [b async for b in _frames.batches(outbox, limit)]

    batches = asyncio.run(collect())
    calls = [f.call for b in batches for f in pb.Responses.FromString(b).frames]
    assert calls == list(range(1, len(sizes) + 1))
    for batch in batches:
        count = len(pb.Responses.FromString(batch).frames)
        assert count == 1 or len(batch) <= limit, "only a lone frame may exceed the limit"


LOAD_REPORTS = st.builds(
    pb.LoadReport,
    running=st.integers(0, 2**32 - 1),
    limit=st.integers(0, 2**32 - 1),
    lag=st.floats(0, 1e6, width=32),
    seen_call=st.integers(0, 2**64 - 1),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(RESPONSES, max_size=4), LOAD_REPORTS)
def test_a_load_report_appended_to_a_batch_is_its_load_field(frames, report):
    tail = _frames.load_field(report)
    encoded = [_frames.message_frame(f) for f in frames] or [b""]  # b"": a report alone
    batch = _frames.batch(encoded[0], encoded[1:], tail)
    assert batch == pb.Responses(frames=frames, load=report).SerializeToString()


def test_batches_append_the_trailer_to_every_message():
    reports = iter(range(1, 10))

    async def collect() -> list[bytes]:
        outbox: asyncio.Queue[_frames.Frame | None] = asyncio.Queue()
        for frame in (_frames.message_frame(pb.Response(call=1, error=b"x" * 100)), b"", b""):
            outbox.put_nowait(frame)
        outbox.put_nowait(None)

        def trailer() -> bytes:
            return _frames.load_field(pb.LoadReport(running=next(reports)))

        return [b async for b in _frames.batches(outbox, 60, trailer)]

    decoded = [pb.Responses.FromString(b) for b in asyncio.run(collect())]
    assert [len(b.frames) for b in decoded] == [1, 0]  # the big frame goes alone; b"" adds none
    assert [b.load.running for b in decoded] == [1, 2]
