"""Namespace validation, and the filesystem names that a namespace owns."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from wool import plugins

PREFIX = "wool-"
"""Every file and folder of every namespace starts with this."""

MAX_NAMESPACE_LENGTH = 100
_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]+")


def validate_namespace(namespace: object) -> str:
    """Return ``namespace`` if it is a usable name, else raise a ``ValueError`` saying why.

    A namespace is 1 to 100 characters among ASCII letters, digits, ``_``, ``.`` and ``-``:
    it is used verbatim in file names, so that ``ls`` of the directory shows what is in use.
    """
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str, got {type(namespace).__name__}")
    if not namespace:
        raise ValueError("namespace must not be empty")
    if len(namespace) > MAX_NAMESPACE_LENGTH:
        raise ValueError(
            f"namespace is {len(namespace)} characters long; the limit is {MAX_NAMESPACE_LENGTH}"
        )
    if not _NAMESPACE.fullmatch(namespace):
        bad = sorted({c for c in namespace if not _NAMESPACE.fullmatch(c)})
        raise ValueError(
            f"namespace {namespace!r} contains {''.join(bad)!r}: use only ASCII letters, "
            "digits, '_', '.' and '-'"
        )
    return namespace


DIRECTORY_VARIABLE = plugins.DIRECTORY_VARIABLE
"""Environment variable naming another (private) directory for the namespace files."""


def base_directory() -> Path:
    """Where a namespace's files live: this user's private directory.

    ``$WOOL_LOCAL_DIR`` if set (it must exist), else ``wool-<uid>`` in ``/dev/shm`` (or
    the temp directory), created on first use. Either way it must be a directory of this
    user that nobody else can enter (mode 0700); see :func:`wool.plugins.private_directory`.
    """
    return plugins.private_directory()


@attrs.frozen
class Paths:
    """The files of one namespace; all three sit in the same directory.

    The suffixes differ and none ends another, so no two namespaces share a name.
    """

    segment: Path
    """The shared-memory segment (a memory-mapped file)."""
    lock: Path
    """The lock file guarding every read-modify-write of the segment."""
    notify: Path
    """The folder that writers touch after each change and subscribers watch."""

    @classmethod
    def of(cls, namespace: str, directory: Path | None = None) -> Paths:
        """The paths of ``namespace`` (validated), in ``directory`` or :func:`base_directory`."""
        stem = (directory or base_directory()) / f"{PREFIX}{validate_namespace(namespace)}"
        return cls(
            segment=stem.with_name(stem.name + ".shm"),
            lock=stem.with_name(stem.name + ".lock"),
            notify=stem.with_name(stem.name + ".d"),
        )
