"""Helpers of the reliability tests and the soak: process facts, waiting for processes
to exit, a rendezvous socket, raw wool sessions, and pools hosted in other processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import Path

import attrs
import grpc
import grpc.aio

from wool import WorkerMetadata, _frames, _serialization
from wool._socket_session import EOF as SOCKET_EOF
from wool._socket_session import SocketStream
from wool._wire import worker_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
SESSION_METHOD = "/wool.v1.Worker/Session"
PROTOCOL_HEADER = "wool-protocol"


# -- process facts -----------------------------------------------------------------------


@attrs.frozen
class ProcessStats:
    """What a process holds, from /proc."""

    rss_kib: int
    fds: int
    threads: int

    @classmethod
    def of(cls, pid: int) -> ProcessStats:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return cls(
            rss_kib=int(fields["VmRSS"].split()[0]),
            fds=len(os.listdir(f"/proc/{pid}/fd")),
            threads=int(fields["Threads"]),
        )


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 :].split()[0] not in (b"Z", b"X", b"x")


def child_pids(pid: int | None = None) -> set[int]:
    """The child processes of ``pid`` (this process by default)."""
    pid = os.getpid() if pid is None else pid
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (task / "children").read_text().split())
    return found


async def wait_exited(pids: Iterable[int], timeout: float) -> None:  # noqa: ASYNC109 (the failure names the processes still alive)
    """Wait until every process in ``pids`` has exited; ``TimeoutError`` after ``timeout``.

    Uses a pidfd per process, which becomes readable when the process exits (whoever its
    parent is, and whether or not it was reaped yet).
    """
    loop = asyncio.get_running_loop()
    waiters: list[asyncio.Future[None]] = []
    fds: list[int] = []
    try:
        for pid in pids:
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            fds.append(fd)
            done: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _resolve_once, done)
            waiters.append(done)
        async with asyncio.timeout(timeout):
            await asyncio.gather(*waiters)
    finally:
        for fd in fds:
            loop.remove_reader(fd)
            os.close(fd)


def _resolve_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# -- rendezvous --------------------------------------------------------------------------


class Rendezvous:
    """A unix socket that routines connect to (``routines.announce``) to report their pid."""

    def __init__(self) -> None:
        self._folder = tempfile.mkdtemp(prefix="woolrv-", dir="/tmp")
        self.path = os.path.join(self._folder, "s")
        self._pids: asyncio.Queue[int] = asyncio.Queue()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Rendezvous:
        self._server = await asyncio.start_unix_server(self._accept, self.path)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        shutil.rmtree(self._folder, ignore_errors=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if line:
                self._pids.put_nowait(int(line))
        finally:
            writer.close()

    async def next_pid(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109 (a default for every caller)
        """The pid of the next routine that announces itself."""
        async with asyncio.timeout(timeout):
            return await self._pids.get()


# -- raw sessions ------------------------------------------------------------------------


def identity(data: bytes) -> bytes:
    return data


@attrs.frozen
class RawOutcome:
    """How a raw session ended: its status, and the frames the worker sent."""

    code: grpc.StatusCode | None
    details: str
    frames: tuple[pb.Response, ...]
    undecodable: int = 0
    timed_out: bool = False


async def raw_session(
    channel: grpc.aio.Channel,
    batches: Sequence[bytes],
    *,
    version: str | None = "1",
    timeout: float = 10.0,  # noqa: ASYNC109 (the outcome records a timeout as an answer)
    half_close: bool = True,
) -> RawOutcome:
    """Send ``batches`` (raw bytes, one gRPC message each) on a new Session and read every
    response until the worker ends the stream, or until ``timeout`` (then cancel it)."""
    method = channel.stream_stream(
        SESSION_METHOD, request_serializer=identity, response_deserializer=identity
    )
    stop = asyncio.Event()

    async def requests() -> AsyncIterator[bytes]:
        for batch in batches:
            yield batch
        if not half_close:
            await stop.wait()

    metadata = () if version is None else ((PROTOCOL_HEADER, version),)
    call = method(requests(), metadata=metadata)
    frames: list[pb.Response] = []
    undecodable = 0
    try:
        async with asyncio.timeout(timeout):
            async for message in call:
                try:
                    frames.extend(pb.Responses.FromString(message).frames)
                except Exception:
                    undecodable += 1
            code, details = await call.code(), await call.details()
    except grpc.aio.AioRpcError as exc:
        code, details = exc.code(), exc.details() or ""
    except TimeoutError:
        call.cancel()
        return RawOutcome(None, "", tuple(frames), undecodable, timed_out=True)
    finally:
        stop.set()
    return RawOutcome(code, details or "", tuple(frames), undecodable)


async def raw_socket_session(
    path: Path,
    batches: Sequence[bytes],
    *,
    version: str = "1",
    timeout: float = 10.0,  # noqa: ASYNC109 (the outcome records a timeout as an answer)
) -> RawOutcome:
    """As :func:`raw_session`, on the worker's session socket at ``path``."""
    stream = SocketStream(path, ((PROTOCOL_HEADER, version),))
    frames: list[pb.Response] = []
    undecodable = 0
    try:
        async with asyncio.timeout(timeout):
            await stream.initial_metadata()
            try:
                for batch in batches:
                    await stream.write(batch)
                await stream.done_writing()
            except ConnectionResetError:
                pass  # the worker ended the session already: its status says why
            while (message := await stream.read()) is not SOCKET_EOF:
                try:
                    frames.extend(pb.Responses.FromString(message).frames)
                except Exception:
                    undecodable += 1
        code, details = grpc.StatusCode.OK, ""
    except grpc.aio.AioRpcError as exc:
        code, details = exc.code(), exc.details() or ""
    except TimeoutError:
        stream.cancel()
        return RawOutcome(None, "", tuple(frames), undecodable, timed_out=True)
    return RawOutcome(code, details, tuple(frames), undecodable)


def task_batch(
    call: int,
    function: object,
    args: tuple,
    kwargs: dict | None = None,
    *,
    generator: bool = False,
    proxy: bytes = b"",
    routine: str = "",
    accept_by: int = 0,
) -> bytes:
    """A ``Requests`` batch holding one start frame, as a caller would encode it."""
    pieces = _frames.task_pieces(
        id=f"raw-{call}",
        parent_id="",
        routine=routine or getattr(function, "__qualname__", "raw"),
        callable=_serialization.dumps_routine(function),  # type: ignore[arg-type]
        arguments=_serialization.dumps((args, kwargs or {})),
        proxy=proxy,
        tags=[],
        generator=generator,
    )
    return b"".join(_frames.start_frame(call, pieces, accept_by))


def request_batch(*requests: pb.Request) -> bytes:
    return pb.Requests(frames=list(requests)).SerializeToString()


def step(call: int, kind: int = pb.Step.NEXT, value: bytes = b"") -> pb.Request:
    return pb.Request(call=call, step=pb.Step(kind=kind, value=value))


def proxy_bytes() -> bytes:
    """A pickled proxy, as every task carries; it is never started by these tests."""
    from wool._caller_proxy import CallerProxy
    from wool_discovery_local import LocalSubscriber
    from wool_lb_roundrobin import RoundRobinLoadBalancer

    return CallerProxy(LocalSubscriber("raw-unused"), RoundRobinLoadBalancer()).pickled()


def values(outcome: RawOutcome, call: int) -> list[object]:
    """The values (results or items) the worker sent for ``call``."""
    return [
        _serialization.loads(f.value)
        for f in outcome.frames
        if f.call == call and f.WhichOneof("frame") == "value"
    ]


# -- a pool in another process -----------------------------------------------------------


@attrs.frozen
class HostedPool:
    """A pool running in a child process (``tests.reliability._owner``)."""

    process: subprocess.Popen[bytes]
    namespace: str
    workers: tuple[WorkerMetadata, ...]

    @property
    def worker_pids(self) -> list[int]:
        return [w.pid for w in self.workers]


def start_hosted_pool(
    namespace: str | None,
    size: int,
    *,
    nested: bool = False,
    until_signal: bool = False,
    own_group: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> HostedPool:
    """Start a pool of ``size`` workers in a child process and wait until it is serving.

    ``namespace`` None gives the pool its private LocalDiscovery namespace; ``nested``
    makes its workers dispatch nested routines first (they attach to the namespace);
    ``until_signal`` keeps it open until a signal ends it (not when stdin closes);
    ``own_group`` makes it lead a process group (with its workers) and pipes its stderr.
    """
    command = ["-m", "tests.reliability._owner", namespace or "-", str(size)]
    process = subprocess.Popen(
        [
            sys.executable,
            *command,
            *(["nested"] if nested else []),
            *(["until-signal"] if until_signal else []),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if own_group else None,
        process_group=0 if own_group else None,
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]),
            **(env or {}),
        },
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else b""
    if not line:
        stop_hosted_pool(process)
        raise RuntimeError(f"the hosted pool did not start within {timeout} s")
    said = json.loads(line)
    return HostedPool(
        process,
        said["namespace"],
        tuple(WorkerMetadata.from_dict(d) for d in said["workers"]),
    )


def stop_hosted_pool(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Close the hosted pool's stdin (it leaves its pool and exits) and reap it."""
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


@contextlib.contextmanager
def hosted_pool(namespace: str | None, size: int, **kwargs: object) -> Iterator[HostedPool]:
    pool = start_hosted_pool(namespace, size, **kwargs)  # type: ignore[arg-type]
    try:
        yield pool
    finally:
        stop_hosted_pool(pool.process)


def namespace_files(namespace: str) -> list[Path]:
    """The LocalDiscovery files of ``namespace`` that exist."""
    from wool_discovery_local._names import Paths

    paths = Paths.of(namespace)
    return [p for p in (paths.segment, paths.lock, paths.notify) if p.exists()]


# -- a `wool worker` deployment ------------------------------------------------------------


@contextlib.asynccontextmanager
async def wool_worker(namespace: str, *options: str) -> AsyncIterator[list[int]]:
    """``wool worker --namespace NAMESPACE OPTIONS`` running; yields its workers' pids.

    Stopped with SIGTERM (and waited for) when the block ends.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wool",
        "worker",
        "--namespace",
        namespace,
        *options,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert process.stdout is not None
    try:
        pids: list[int] = []
        async with asyncio.timeout(60):
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    raise RuntimeError(f"wool worker exited with {await process.wait()}")
                if line.startswith("worker ") and "(pid " in line:
                    pids.append(int(line.rsplit("(pid ", 1)[1].rstrip(")\n")))
                if line.startswith("ready:"):
                    break
        yield pids
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            async with asyncio.timeout(30):
                await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
