"""What the throwaway unprivileged user of the local attack tests does.

Run as that user by tests/security/local_attack.py, with ``python -I`` (so nothing of
root's environment is trusted) and a system interpreter::

    python -I intruder_steps.py PATHS STEP [ARGS...]

``PATHS`` is root's ``PYTHONPATH`` entries then the test venv's site directory
(world-readable), joined with ``os.pathsep``: the site directory is added with
``site.addsitedir`` so that wool imports from where it does for root. Each step prints one JSON
line saying what happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import site
import socket
import sys
from pathlib import Path


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def plant_symlink(folder: str, target: str) -> None:
    """Make a world-writable ``folder`` whose ``changed`` links to ``target`` (item 1)."""
    path = Path(folder)
    path.mkdir(parents=False)
    path.chmod(0o777)
    (path / "wool-shared.d").mkdir()
    (path / "wool-shared.d").chmod(0o777)
    (path / "wool-shared.d" / "changed").symlink_to(target)
    say(planted=str(path / "wool-shared.d" / "changed"))


def plant_namespace(directory: str, target: str) -> None:
    """``mkdir -m777 DIR/wool-shared.d; ln -s TARGET DIR/wool-shared.d/changed`` (item 1)."""
    folder = Path(directory) / "wool-shared.d"
    folder.mkdir()
    folder.chmod(0o777)
    (folder / "changed").symlink_to(target)
    say(planted=str(folder / "changed"))


def plant_fifo(path: str) -> None:
    """``mkfifo PATH`` (item 3)."""
    os.mkfifo(path, 0o666)
    say(planted=path)


async def publish_rogue(namespace: str) -> None:
    """Publish a worker record pointing at a listener of ours; wait for stdin to close
    (item 2). Prints whether anybody connected to the listener when it is over."""
    import wool

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    record = wool.WorkerMetadata("intruder-worker", f"127.0.0.1:{port}", os.getpid(), "0.16.0")
    async with wool.LocalDiscovery(namespace).publisher as publisher:
        await publisher.publish(wool.DiscoveryEvent("worker-added", record))
        say(published=record.to_dict())
        await asyncio.to_thread(sys.stdin.read)
    try:
        listener.accept()
        connected = True
    except BlockingIOError:
        connected = False
    say(connected=connected)


class _Static:
    """A discovery that knows one worker: the victim's, as the intruder learnt it."""

    def __init__(self, worker: object) -> None:
        import wool.testing

        self.subscriber = wool.testing.StaticSubscriber([worker])  # type: ignore[list-item]
        self.publisher = None


async def run_code(worker_json: str, marker: str) -> None:
    """Dispatch a routine that creates ``marker`` to the victim's worker (item 4)."""
    import wool

    @wool.routine
    async def plant(path: str) -> int:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
        return os.getuid()

    worker = wool.WorkerMetadata.from_dict(json.loads(worker_json))
    try:
        async with wool.WorkerPool(discovery=_Static(worker), wait_for_workers=10):
            async with asyncio.timeout(30):
                uid = await plant(marker)
    except Exception as exc:
        say(ran=False, error=f"{type(exc).__name__}: {exc}")
    else:
        say(ran=True, uid=uid)


def main(argv: list[str]) -> None:
    *python_path, site_packages = argv[0].split(os.pathsep)
    sys.path[:0] = [p for p in python_path if p]
    site.addsitedir(site_packages)
    step, args = argv[1], argv[2:]
    if step == "plant-symlink":
        plant_symlink(*args)
    elif step == "plant-namespace":
        plant_namespace(*args)
    elif step == "plant-fifo":
        plant_fifo(*args)
    elif step == "publish-rogue":
        asyncio.run(publish_rogue(*args))
    elif step == "run-code":
        asyncio.run(run_code(*args))
    elif step == "probe":
        import wool

        say(version=wool.__version__, uid=os.getuid())
    else:
        raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
