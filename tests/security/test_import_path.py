"""`wool worker` started from a directory other users can write to runs none of their code."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import wool
from tests.cli.helpers import BOUND, ENV, namespace, running

PLANTED = ("wool_discovery_local", "wool_lb_roundrobin", "shortuuid")
"""Modules `wool worker` or its workers import: the command, a task's proxy, the worker.

``python -m wool`` itself puts the current directory first before wool runs (so a planted
``shortuuid`` runs when the ``wool`` package is imported: Python's behaviour, which the
README warns about); the modules wool imports afterwards must still come from the
installed packages."""
LATE = ("wool_discovery_local", "wool_lb_roundrobin")

ROUTINES = '''
import wool

@wool.routine
async def origin() -> str:
    """Where the worker imported this module from."""
    return __file__
'''


@attrs.frozen
class Shared:
    directory: Path
    """World-writable, holding modules another user planted and the routines' module."""
    ran: Path
    """Where a planted module leaves a mark if it runs."""


@pytest.fixture
def shared(tmp_path: Path, command: tuple[str, ...]) -> Iterator[Shared]:
    directory = tmp_path / "shared"
    ran = tmp_path / "ran"
    directory.mkdir()
    ran.mkdir()
    for name in LATE if "-m" in command else PLANTED:
        (directory / name).mkdir()
        (directory / name / "__init__.py").write_text(
            f"import pathlib\npathlib.Path({str(ran / name)!r}).touch()\n"
            "raise ImportError('a planted module ran')\n"
        )
    (directory / "cwd_routines.py").write_text(ROUTINES)
    directory.chmod(0o777)
    sys.path.append(str(directory))  # the caller imports the routines' module too
    try:
        yield Shared(directory, ran)
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop("cwd_routines", None)


def launchers() -> list[object]:
    script = Path(sys.executable).with_name("wool")
    return [
        pytest.param((sys.executable, "-m", "wool"), id="python -m wool"),
        pytest.param(
            (str(script),),
            id="wool script",
            marks=pytest.mark.skipif(not script.exists(), reason=f"no {script}"),
        ),
    ]


@pytest.mark.parametrize("command", launchers())
async def test_planted_modules_do_not_run_and_the_directory_is_reported(command, shared):
    ns = namespace()
    async with running(
        "worker", "--size", "1", "--namespace", ns, command=command, cwd=shared.directory
    ) as worker:
        [started] = await worker.ready()
        warning = await worker.error_line(lambda line: "writable by other users" in line)
        assert str(shared.directory) in warning
        routines = importlib.import_module("cwd_routines")
        async with wool.WorkerPool(discovery=wool.LocalDiscovery(ns)) as pool:
            assert pool.proxy is not None
            await pool.proxy.wait_for([started.uid], timeout=BOUND)
            # The worker still imports what only the current directory provides.
            assert await routines.origin() == str(shared.directory / "cwd_routines.py")
    assert sorted(p.name for p in shared.ran.iterdir()) == []


async def test_a_pool_started_by_python_c_still_imports_from_its_directory(tmp_path: Path):
    """Workers run with -P; the caller's "" on sys.path reaches them as its directory."""
    (tmp_path / "cwd_routines.py").write_text(ROUTINES)
    script = (
        "import asyncio, wool, cwd_routines\n"
        "async def main():\n"
        "    async with wool.WorkerPool(size=1):\n"
        "        print(await cwd_routines.origin())\n"
        "asyncio.run(main())\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        cwd=tmp_path,
        env=ENV,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(BOUND):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == str(tmp_path / "cwd_routines.py")
