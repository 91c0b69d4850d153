"""Run the `wool` command as a real process and read what it prints, with bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
BOUND = 60.0
"""Every wait on the command is bounded by this many seconds: a hang fails, never stalls."""

# The command and its workers import the test routines by name, with this interpreter.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *(p for p in sys.path if p)])}

WORKER_LINE = re.compile(r"^worker (\S+) at (\S+) \(pid (\d+)\)(?: tags (\S+))?( tls)?$")


def namespace() -> str:
    """A LocalDiscovery namespace of its own for one test."""
    return f"cli-{uuid.uuid4().hex[:8]}"


@attrs.frozen
class Started:
    """A worker as `wool worker` announced it."""

    uid: str
    address: str
    pid: int
    tags: frozenset[str]
    secure: bool


@attrs.frozen
class Result:
    returncode: int
    stdout: str
    stderr: str


class Wool:
    """A running `wool ...` process: its stdout is read line by line, stderr collected."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.errors: list[str] = []
        self._error_seen = asyncio.Condition()
        assert process.stderr is not None
        self._drain = asyncio.ensure_future(self._collect(process.stderr))

    async def _collect(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            async with self._error_seen:
                self.errors.append(line.decode().rstrip("\n"))
                self._error_seen.notify_all()

    async def line(self) -> str:
        """The next line on stdout; fails on end of file or after BOUND seconds."""
        assert self.process.stdout is not None
        async with asyncio.timeout(BOUND):
            raw = await self.process.stdout.readline()
        if not raw:
            code = await self.finish()
            raise AssertionError(f"wool exited ({code.returncode}) early:\n{code.stderr}")
        return raw.decode().rstrip("\n")

    async def error_line(self, predicate: Callable[[str], bool]) -> str:
        """The first stderr line matching ``predicate`` (waiting up to BOUND seconds)."""
        async with asyncio.timeout(BOUND), self._error_seen:
            await self._error_seen.wait_for(lambda: any(predicate(e) for e in self.errors))
        return next(e for e in self.errors if predicate(e))

    async def ready(self) -> list[Started]:
        """Read `wool worker`'s announcements up to its ready line."""
        workers = []
        while not (line := await self.line()).startswith("ready: "):
            match = WORKER_LINE.match(line)
            assert match, f"unexpected line {line!r}"
            uid, address, pid, tags, tls = match.groups()
            workers.append(
                Started(
                    uid, address, int(pid), frozenset((tags or "").split(",")) - {""}, bool(tls)
                )
            )
        return workers

    def send_signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    async def finish(self) -> Result:
        """Wait for the process to exit; what is left on stdout, and all of stderr."""
        assert self.process.stdout is not None
        async with asyncio.timeout(BOUND):
            rest = await self.process.stdout.read()
            code = await self.process.wait()
            await self._drain
        return Result(code, rest.decode(), "\n".join(self.errors))


@contextlib.asynccontextmanager
async def running(
    *args: str,
    prefix: Sequence[str] = (),
    command: Sequence[str] = (sys.executable, "-m", "wool"),
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    own_group: bool = False,
) -> AsyncIterator[Wool]:
    """`python -m wool ARGS...` as a child process; stopped (SIGTERM, then SIGKILL) on exit.

    ``prefix`` goes before the interpreter (``ip netns exec NAME``); ``command`` replaces
    ``python -m wool`` (the ``wool`` script); ``cwd`` is where it runs; ``env`` adds to the
    environment; ``own_group`` makes it lead a process group of its own (its pid is the
    group's id), as a service manager starts it.
    """
    process = await asyncio.create_subprocess_exec(
        *prefix,
        *command,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env={**ENV, **(env or {})},
        process_group=0 if own_group else None,
    )
    wool_process = Wool(process)
    try:
        yield wool_process
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await wool_process.finish()
            except TimeoutError:
                process.kill()
                await process.wait()
        wool_process._drain.cancel()


async def run(*args: str) -> Result:
    """Run `wool ARGS...` to the end."""
    async with running(*args) as command:
        return await command.finish()


async def listed(ns: str) -> list[dict[str, object]]:
    """What `wool workers --namespace NS --json` prints, parsed.

    The listening window is short: LocalDiscovery hands over the records already published
    in its first step, before any timer can end the window.
    """
    result = await run("workers", "--namespace", ns, "--json", "--wait", "0.5")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
