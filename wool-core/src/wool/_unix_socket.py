"""Unix domain socket addresses of workers: where their socket files go, and cleanup.

A worker without an explicit host listens on a socket file in this user's private
directory (see :mod:`wool._private_files`), so that only this user can connect to it.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
from pathlib import Path

from wool._metadata import UNIX_PREFIX
from wool._private_files import private_directory

PREFIX = UNIX_PREFIX
"""How a worker address names a unix socket: ``unix:/absolute/path``."""

MAX_PATH_BYTES = 107 if sys.platform.startswith("linux") else 103
"""The longest socket path the kernel takes (``sun_path`` holds 108 bytes on Linux, 104
on the BSDs and macOS, with the NUL)."""

_SOCKET_NAME = re.compile(r"(?P<uid>.+)\.(?P<pid>[0-9]+)\.sock")


def socket_path(uid: str, pid: int | None = None) -> Path:
    """The socket file of worker ``uid`` run by process ``pid`` (this one by default).

    ``ValueError`` if the path would be too long for a unix socket.
    """
    path = private_directory() / f"{uid}.{os.getpid() if pid is None else pid}.sock"
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise ValueError(
            f"the socket path {str(path)!r} is {len(os.fsencode(path))} bytes long; unix "
            f"sockets take at most {MAX_PATH_BYTES}: point WOOL_LOCAL_DIR at a shorter path"
        )
    return path


def session_socket(grpc_socket: Path) -> Path | None:
    """The session socket (``wool._socket_session``) of the worker whose gRPC socket is
    ``grpc_socket``: ``<uid>.<pid>.sock`` -> ``<uid>-session.<pid>.sock`` (so the stale
    socket rule below covers it too); None if that path is too long for a socket (the
    worker then takes sessions on gRPC only)."""
    uid, pid, suffix = grpc_socket.name.rsplit(".", 2)
    path = grpc_socket.with_name(f"{uid}-session.{pid}.{suffix}")
    return path if len(os.fsencode(path)) <= MAX_PATH_BYTES else None


def path_of(address: str) -> Path | None:
    """The socket path of a ``unix:`` address, else ``None``."""
    if not address.startswith(PREFIX):
        return None
    return Path(address[len(PREFIX) :].removeprefix("//"))


def remove(path: Path) -> bool:
    """Remove the socket file at ``path`` if it is one of this user's sockets."""
    with contextlib.suppress(FileNotFoundError):
        info = os.lstat(path)
        if stat.S_ISSOCK(info.st_mode) and info.st_uid == os.geteuid():
            os.unlink(path)
            return True
    return False


def remove_worker(path: Path) -> None:
    """Remove the gRPC socket at ``path`` and the session socket beside it."""
    remove(path)
    sessions = session_socket(path)
    if sessions is not None:
        remove(sessions)


def remove_stale(directory: Path) -> list[Path]:
    """Remove the socket files in ``directory`` whose worker process is gone.

    Only this user's sockets named ``<uid>.<pid>.sock`` are considered; returns those
    removed. A worker killed outright cannot remove its own socket: the next one to start
    does.
    """
    removed: list[Path] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = _SOCKET_NAME.fullmatch(name)
        if match is None or _alive(int(match["pid"])):
            continue
        path = directory / name
        if remove(path):
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        with contextlib.suppress(PermissionError):  # another user's process: alive
            os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
