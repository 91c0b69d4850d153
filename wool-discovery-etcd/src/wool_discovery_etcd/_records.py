"""How a worker is stored in etcd: its key and its JSON value (format 1).

Keys of namespace ``NS``::

    /wool/NS/format          "1": the record format of the namespace, written once
    /wool/NS/workers/<uid>   one worker, attached to its publisher's lease

A worker's value is a JSON object ``{"format": 1, "uid", "address", "pid", "version",
"tags" (sorted), "secure"}``, at most :data:`MAX_RECORD` bytes. The uid in the key is
percent-encoded, so any uid makes one path segment.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from wool import WorkerMetadata
from wool_discovery_etcd._errors import IncompatibleNamespace

FORMAT = 1
MAX_RECORD = 16 * 1024
"""The largest worker record written or read (a guard against hostile input)."""


def format_key(prefix: bytes) -> bytes:
    """The key holding the namespace's record format."""
    return prefix + b"format"


def workers_prefix(prefix: bytes) -> bytes:
    """The prefix of every worker key of the namespace."""
    return prefix + b"workers/"


def worker_key(prefix: bytes, uid: str) -> bytes:
    """The key of worker ``uid``."""
    return workers_prefix(prefix) + quote(uid, safe="").encode()


def range_end(prefix: bytes) -> bytes:
    """The end of etcd's key range holding every key that starts with ``prefix``."""
    end = bytearray(prefix)
    while end and end[-1] == 0xFF:
        end.pop()
    if not end:
        return b"\0"
    end[-1] += 1
    return bytes(end)


def encode(metadata: WorkerMetadata) -> bytes:
    """The stored value of ``metadata``; ``ValueError`` when it exceeds MAX_RECORD."""
    value = json.dumps(
        {
            "format": FORMAT,
            "uid": metadata.uid,
            "address": metadata.address,
            "pid": metadata.pid,
            "version": metadata.version,
            "tags": sorted(metadata.tags),
            "secure": metadata.secure,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    if len(value) > MAX_RECORD:
        raise ValueError(
            f"worker {metadata.uid!r}: its record takes {len(value)} bytes "
            f"(at most {MAX_RECORD}); use fewer or shorter tags"
        )
    return value


def decode(value: bytes) -> WorkerMetadata:
    """The worker a stored value describes; ``ValueError`` saying what is wrong."""
    if len(value) > MAX_RECORD:
        raise ValueError(f"record of {len(value)} bytes exceeds {MAX_RECORD}")
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if data.get("format") != FORMAT:
        raise ValueError(f"record format {data.get('format')!r}, expected {FORMAT}")
    fields = {"uid": str, "address": str, "pid": int, "version": str, "tags": list, "secure": bool}
    for name, kind in fields.items():
        if not isinstance(data.get(name), kind) or (kind is int and isinstance(data[name], bool)):
            raise ValueError(f"field {name!r} is missing or not a {kind.__name__}")
    if not all(isinstance(tag, str) for tag in data["tags"]):
        raise ValueError("tags must be strings")
    if not data["uid"]:
        raise ValueError("empty uid")
    host, _, port = data["address"].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"malformed address {data['address']!r}")
    return WorkerMetadata(
        uid=data["uid"],
        address=data["address"],
        pid=data["pid"],
        version=data["version"],
        tags=frozenset(data["tags"]),
        secure=data["secure"],
    )


def check_format(value: bytes | None, key: bytes, where: str) -> None:
    """Raise ``IncompatibleNamespace`` unless the namespace's format marker is ours
    (or absent)."""
    if value is None or value == str(FORMAT).encode():
        return
    shown = value[:40].decode(errors="replace")
    raise IncompatibleNamespace(
        f"the namespace at {key.decode(errors='replace')!r} on {where} holds wool records "
        f"of format {shown!r}, and this wool reads format {FORMAT}: upgrade wool on every "
        "host to one version, or use another namespace"
    )
