"""The per-user private directory, and opening files in it without trusting anyone else.

Everything wool keeps on the local filesystem (LocalDiscovery's segments and locks, the
unix sockets of workers) lives in one directory that only its user can enter: another
user can then neither plant a file or symbolic link there nor reach a socket in it.

The default directory (``/dev/shm/wool-<uid>``) is removed once nothing uses it: every
process that asked for it holds a shared ``flock`` on it until it exits, and the last one
to exit (it gets the lock exclusively) removes it if it is empty. A process that asked
for it just then waits for that removal to finish and makes the directory again.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import threading
from pathlib import Path

DIRECTORY_VARIABLE = "WOOL_LOCAL_DIR"
"""Environment variable naming the private directory to use instead of the default one."""

_SHM = Path("/dev/shm")
_OTHERS = 0o077
_ATTEMPTS = 100
"""Times the default directory is made again when it vanishes as it is being taken."""

_users_lock = threading.Lock()
_in_use: dict[Path, int] = {}
"""The default directories this process uses: path -> a descriptor of it holding a
shared lock until the process exits."""


def private_directory(path: str | os.PathLike[str] | None = None) -> Path:
    """A directory that only this user can use, created (mode 0700) if missing.

    Without ``path``: ``$WOOL_LOCAL_DIR`` if set (it must already exist), else
    ``wool-<uid>`` in ``/dev/shm`` (in the temp directory where there is no usable
    ``/dev/shm``). With ``path``: that directory, its parent being expected to exist.

    The default directory is this process's to use until it exits: the last process using
    it removes it on exit when it is empty (``$WOOL_LOCAL_DIR`` and ``path`` are never
    removed).

    The directory is created race-free (``mkdir`` fails rather than accepting what is
    there) and checked with ``lstat`` before use: a real directory, not a symbolic link,
    owned by this user, with no permission for group or others. Anything else raises
    ``PermissionError`` naming what is wrong (``ValueError`` if it is not a directory).
    """
    if path is None:
        override = os.environ.get(DIRECTORY_VARIABLE)
        if override:
            return check_private_directory(override, label=f"{DIRECTORY_VARIABLE}={override!r}")
        return _default_directory(_default_parent() / f"wool-{os.geteuid()}")
    path = Path(path)
    _make(path)
    return check_private_directory(path)


def _make(path: Path) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    else:
        _restrict(path)


def _default_directory(path: Path) -> Path:
    """``path`` made if missing, checked, and held (shared lock) by this process."""
    with _users_lock:
        held = _in_use.get(path)
        if held is not None and _same_file(held, path):
            return check_private_directory(path)
        if held is not None:  # removed by hand meanwhile: take the new one
            os.close(_in_use.pop(path))
        for _ in range(_ATTEMPTS):
            _make(path)
            try:
                check_private_directory(path)
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except (ValueError, FileNotFoundError):
                if path.exists() or path.is_symlink():
                    raise
                continue  # removed by its last user as we came: make it again
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits while its last user removes it
            if _same_file(fd, path):
                if not _in_use:
                    atexit.register(_release_default_directories)
                _in_use[path] = fd
                return path
            os.close(fd)  # removed meanwhile: make it again
        raise RuntimeError(f"{path} keeps vanishing as it is made; is something removing it?")


def _same_file(fd: int, path: Path) -> bool:
    try:
        mine, there = os.fstat(fd), os.lstat(path)
    except FileNotFoundError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def _release_default_directories() -> None:
    """At exit: remove each default directory this process used if it is empty and no
    other process uses it (none holds its lock)."""
    with _users_lock:
        for path, fd in list(_in_use.items()):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # another process uses it: the last one removes it
            else:
                if _same_file(fd, path):
                    with contextlib.suppress(OSError):  # not empty: something still lives there
                        os.rmdir(path)
            finally:
                os.close(fd)
                del _in_use[path]


def _forget_after_fork() -> None:
    """In a forked child: the parent's locks are the parent's (the child takes its own)."""
    global _users_lock
    _users_lock = threading.Lock()
    for fd in _in_use.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _in_use.clear()


def check_private_directory(path: str | os.PathLike[str], *, label: str | None = None) -> Path:
    """``path`` if it is a private directory of this user; raise saying why not otherwise.

    Checked with ``lstat``: a symbolic link, another owner, or any permission bit for
    group or others raises ``PermissionError``; a missing path or another kind of file
    raises ``ValueError``.
    """
    path = Path(path)
    label = label or str(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise ValueError(f"{label} is not a directory (it does not exist)") from None
    if stat.S_ISLNK(info.st_mode):
        raise PermissionError(
            f"{label} is a symbolic link; wool keeps its files only in a real directory "
            "of its own user (mode 0700)"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{label} is not a directory")
    _check_owner(
        info,
        label,
        f"Remove it, or set {DIRECTORY_VARIABLE} to a directory of yours with mode 0700",
    )
    if info.st_mode & _OTHERS:
        raise PermissionError(
            f"{label} has mode {stat.S_IMODE(info.st_mode):04o}: other users can reach what "
            f"is inside. wool needs 0700 (chmod 700 {str(path)!r}, after checking its content)"
        )
    return path


def open_private(
    path: str | os.PathLike[str], flags: int, *, create: bool = False, mode: int = 0o600
) -> int:
    """Open a regular file of this user and return the descriptor.

    The file is opened with ``O_NOFOLLOW``, ``O_NONBLOCK`` and ``O_CLOEXEC`` added to
    ``flags``; with ``create`` a missing file is created with ``O_EXCL`` (and ``mode``),
    never opened through whatever appeared meanwhile. ``O_TRUNC`` in ``flags`` applies only
    once the file is checked. The open file is checked with ``fstat``: anything but a
    regular file owned by this user (a FIFO, a device, a link) is closed again and raises
    ``PermissionError``. A missing file without ``create`` raises ``FileNotFoundError``.
    """
    truncate = bool(flags & os.O_TRUNC)
    flags = (flags & ~(os.O_CREAT | os.O_EXCL | os.O_TRUNC)) | (
        os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    )
    fd = _open_or_create(Path(path), flags, create, mode)
    try:
        _check_file(fd, path)
        if truncate:
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_or_create(path: Path, flags: int, create: bool, mode: int) -> int:
    while True:
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PermissionError(
                    f"{path} is a symbolic link; wool does not follow links to its files"
                ) from None
            raise
        try:
            return os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue  # created by someone else meanwhile: open that one, and check it


def _check_file(fd: int, path: str | os.PathLike[str]) -> None:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise PermissionError(f"{path} is not a regular file; wool refuses to use it")
    _check_owner(info, str(path))


def _check_owner(info: os.stat_result, label: str, advice: str = "") -> None:
    me = os.geteuid()
    if info.st_uid != me:
        raise PermissionError(
            f"{label} belongs to uid {info.st_uid}, not to this user (uid {me}); wool "
            f"refuses to use it. {advice}".rstrip()
        )


def _restrict(path: Path) -> None:
    """Set exactly mode 0700 on a directory just made (``mkdir`` honours the umask)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def _default_parent() -> Path:
    if _SHM.is_dir() and os.access(_SHM, os.W_OK | os.X_OK):
        return _SHM
    return Path(tempfile.gettempdir())


os.register_at_fork(after_in_child=_forget_after_fork)
