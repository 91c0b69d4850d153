"""The transport floor: a raw ``grpc.aio`` client/server pair doing wool's work.

The server runs in its own process (``python -m bench.raw_grpc``), two of them, as wool
runs two workers. Requests are ``pickle.dumps((function, args, kwargs))`` with the function
pickled by reference (the server imports it by name), replies are the pickled result: the
least a pickling RPC layer can do. There is no protobuf envelope, no task record, no
events, no discovery and no load balancer beyond alternating between the two servers.

Methods (bytes in, bytes out, no (de)serialisers):

- ``/bench.Raw/Call``  unary: one call, one reply (latency, throughput, payload);
- ``/bench.Raw/Pull``  bidi: the first request names the generator, every request (the
  first included) asks for one item, every reply is one pickled item; ``b""`` ends;
- ``/bench.Raw/Exchange`` bidi: each request a call as for ``Call``, each reply its
  result, on one stream kept open (a session without an acknowledgement);
- ``/bench.Raw/Session`` bidi: the same, but each call is answered twice, ``b"a"`` when
  the server takes it and then its result, as wool's workers answer ``accepted`` before
  the result (so that a caller never sends a call elsewhere that one already runs);
- ``/bench.Raw/Push``  server streaming: the server iterates the generator and pushes
  every item without waiting for a request (a reference, not a floor for pull semantics);
- ``/bench.Raw/Length`` unary: the request *is* the payload (the ``bytes`` object itself,
  no pickle, no envelope), the reply its length as 8 bytes: the floor for moving an
  argument;
- ``/bench.Raw/Make``  unary: the request is a length as 8 bytes, the reply that many
  bytes, as they are: the floor for moving a result.

The server listens on 127.0.0.1 and, given ``--unix PATH``, on that unix socket too
(wool's workers listen on unix sockets by default: the streaming floors are measured on
both). It prints its port on stdout, then serves until its stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio

from bench.probes import bench_env

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
PROTOCOL = pickle.HIGHEST_PROTOCOL
END = b""
ACCEPTED = b"a"

SERVER_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_concurrent_streams", 1 << 16),
    ("grpc.so_reuseport", 0),
]
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.enable_retries", 0),
]
START_TIMEOUT = 30.0


def encode_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
    return pickle.dumps((fn, args, kwargs), PROTOCOL)


# --- server ---------------------------------------------------------------------------------


async def _call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    fn, args, kwargs = pickle.loads(request)
    return pickle.dumps(await fn(*args, **kwargs), PROTOCOL)


async def _length(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return len(request).to_bytes(8, "little")


async def _make(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return bytes(int.from_bytes(request, "little"))


async def _pull(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    generator = None
    try:
        async for request in requests:
            if generator is None:
                fn, args, kwargs = pickle.loads(request)
                generator = fn(*args, **kwargs)
            try:
                item = await generator.__anext__()
            except StopAsyncIteration:
                yield END
                return
            yield pickle.dumps(item, PROTOCOL)
    finally:
        if generator is not None:
            await generator.aclose()


async def _exchange(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield await _call(request, context)


async def _session(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield ACCEPTED
        yield await _call(request, context)


async def _push(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    fn, args, kwargs = pickle.loads(request)
    generator = fn(*args, **kwargs)
    try:
        async for item in generator:
            yield pickle.dumps(item, PROTOCOL)
    finally:
        await generator.aclose()


async def serve() -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS, maximum_concurrent_rpcs=None)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "bench.Raw",
                {
                    "Call": grpc.unary_unary_rpc_method_handler(_call),
                    "Pull": grpc.stream_stream_rpc_method_handler(_pull),
                    "Exchange": grpc.stream_stream_rpc_method_handler(_exchange),
                    "Session": grpc.stream_stream_rpc_method_handler(_session),
                    "Push": grpc.unary_stream_rpc_method_handler(_push),
                    "Length": grpc.unary_unary_rpc_method_handler(_length),
                    "Make": grpc.unary_unary_rpc_method_handler(_make),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    if "--unix" in sys.argv:
        server.add_insecure_port("unix:" + sys.argv[sys.argv.index("--unix") + 1])
    await server.start()
    print(port, flush=True)
    # Serve until the parent closes our stdin (or dies, which closes it too).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    await server.stop(0)


# --- client ---------------------------------------------------------------------------------


class RawServer:
    """One server process this process started and stops."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.address = ""
        self._directory = tempfile.TemporaryDirectory(prefix="wool-bench-raw-")
        self.unix_address = f"unix:{os.path.join(self._directory.name, 'raw.sock')}"
        """The same server on a unix socket (as wool's workers listen by default)."""

    async def start(self) -> None:
        unix = self.unix_address.removeprefix("unix:")
        self.process = await spawn_server("bench.raw_grpc", "--unix", unix)
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                line = await self.process.stdout.readline()
            self.address = f"127.0.0.1:{int(line)}"
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            await end_server(process)
        self._directory.cleanup()


async def spawn_server(module: str, *args: str) -> asyncio.subprocess.Process:
    """``python -m module args`` in :func:`bench_env`, stdin and stdout piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=bench_env(),
    )


async def end_server(process: asyncio.subprocess.Process) -> None:
    """Close the server's stdin (it serves until then); kill it if it lingers."""
    if process.stdin is not None:
        process.stdin.close()
    try:
        async with asyncio.timeout(10):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


class RawCluster:
    """Two raw servers and one channel to each; calls alternate between them."""

    def __init__(self, size: int = 2) -> None:
        self.servers = [RawServer() for _ in range(size)]
        self.channels: list[grpc.aio.Channel] = []
        self.unix_channels: list[grpc.aio.Channel] = []
        self._next = 0
        self._streams: dict[tuple[str, int], Any] = {}

    async def __aenter__(self) -> RawCluster:
        try:
            await asyncio.gather(*(s.start() for s in self.servers))
            for server in self.servers:
                channel = grpc.aio.insecure_channel(server.address, options=CHANNEL_OPTIONS)
                await asyncio.wait_for(channel.channel_ready(), START_TIMEOUT)
                self.channels.append(channel)
                unix = grpc.aio.insecure_channel(server.unix_address, options=CHANNEL_OPTIONS)
                await asyncio.wait_for(unix.channel_ready(), START_TIMEOUT)
                self.unix_channels.append(unix)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        self.unary = [c.unary_unary("/bench.Raw/Call") for c in self.channels]
        self.pull = [c.stream_stream("/bench.Raw/Pull") for c in self.channels]
        self.push = [c.unary_stream("/bench.Raw/Push") for c in self.channels]
        self.pull_unix = [c.stream_stream("/bench.Raw/Pull") for c in self.unix_channels]
        self.push_unix = [c.unary_stream("/bench.Raw/Push") for c in self.unix_channels]
        self.length_calls = [c.unary_unary("/bench.Raw/Length") for c in self.channels]
        self.make_calls = [c.unary_unary("/bench.Raw/Make") for c in self.channels]
        return self

    async def __aexit__(self, *exc: object) -> None:
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream.cancel()
        channels, self.channels = self.channels + self.unix_channels, []
        self.unix_channels = []
        for channel in channels:
            await channel.close()
        await asyncio.gather(*(s.stop() for s in self.servers), return_exceptions=True)

    def pick(self) -> int:
        index = self._next
        self._next = (index + 1) % len(self.channels)
        return index

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        reply = await self.unary[self.pick()](encode_call(fn, *args))
        return pickle.loads(reply)

    async def exchange(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A call on a bidi stream kept open per server (unix socket): one reply."""
        stream = self._stream("Exchange")
        await stream.write(encode_call(fn, *args))
        return pickle.loads(await stream.read())

    async def session(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A call on a bidi stream kept open per server (unix socket), answered as wool's
        workers answer: first that it was taken, then its result."""
        stream = self._stream("Session")
        await stream.write(encode_call(fn, *args))
        if await stream.read() != ACCEPTED:
            raise RuntimeError("the raw session server did not acknowledge the call")
        return pickle.loads(await stream.read())

    def _stream(self, method: str) -> Any:
        index = self.pick()
        stream = self._streams.get((method, index))
        if stream is None:
            channel = self.unix_channels[index]
            stream = self._streams[method, index] = channel.stream_stream(f"/bench.Raw/{method}")()
        return stream

    async def length(self, data: bytes) -> int:
        """The raw bytes floor for an argument: ``data`` is the request as it is."""
        reply = await self.length_calls[self.pick()](data)
        return int.from_bytes(reply, "little")

    async def make(self, n: int) -> bytes:
        """The raw bytes floor for a result: ``n`` bytes come back as the reply itself."""
        return await self.make_calls[self.pick()](n.to_bytes(8, "little"))


if __name__ == "__main__":
    asyncio.run(serve())
