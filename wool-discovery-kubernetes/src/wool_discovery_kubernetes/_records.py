"""The annotation that carries a pod's workers, and the pool label that selects pods.

A worker pod carries the label ``wool.dev/pool: <pool namespace>`` and the annotation
``wool.dev/workers`` whose value is JSON, format version 1::

    {"version": 1, "workers": [{"uid": ..., "address": "host:port", "pid": 7,
      "version": "0.16.0", "tags": ["gpu"], "secure": false}, ...]}

Annotations are written by whoever may patch the pod, so a subscriber treats them as
hostile input: the annotation and each record are bounded in size and count, every
record is parsed alone, and a bad one is logged and skipped without affecting the rest.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Iterable
from typing import Any

from wool import WorkerMetadata

log = logging.getLogger(__name__)

POOL_LABEL = "wool.dev/pool"
"""The pod label whose value is the pool namespace the pod's workers serve."""
WORKERS_ANNOTATION = "wool.dev/workers"
"""The pod annotation that lists the pod's workers (JSON)."""
FORMAT_VERSION = 1

MAX_ANNOTATION = 64 * 1024
"""The largest annotation value read or written, in bytes (Kubernetes allows 256 KiB for
all of a pod's annotations together)."""
MAX_WORKERS = 256
"""The most workers one pod may publish; further records are ignored."""
MAX_RECORD = 2048
"""The largest single worker record, in bytes of compact JSON."""
MAX_TAGS = 64
MAX_TEXT = 253
"""The longest uid, address, version or tag accepted."""

_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def validate_pool(namespace: str) -> str:
    """``namespace`` if it can be the value of the pool label, else ``ValueError``.

    Kubernetes label values are at most 63 characters: letters, digits, ``-``, ``_`` and
    ``.``, starting and ending with a letter or digit.
    """
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a string, got {namespace!r}")
    if not namespace or not _LABEL_VALUE.fullmatch(namespace):
        raise ValueError(
            f"namespace {namespace!r} cannot be a Kubernetes label value: use 1 to 63 "
            "letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    return namespace


def encode_workers(workers: Iterable[WorkerMetadata]) -> str:
    """The annotation value listing ``workers``; ``ValueError`` when it would exceed the
    bounds subscribers enforce (too many workers, or a record too large)."""
    records = []
    for worker in workers:
        record = worker.to_dict()
        size = len(_compact(record).encode())
        if size > MAX_RECORD:
            raise ValueError(
                f"worker {worker.uid!r}: its record takes {size} bytes (at most {MAX_RECORD}); "
                "use fewer or shorter tags"
            )
        _check_fields(worker)
        records.append(record)
    if len(records) > MAX_WORKERS:
        raise ValueError(f"a pod publishes at most {MAX_WORKERS} workers, not {len(records)}")
    text = _compact({"version": FORMAT_VERSION, "workers": records})
    if len(text.encode()) > MAX_ANNOTATION:
        raise ValueError(
            f"the {WORKERS_ANNOTATION} annotation would take {len(text.encode())} bytes "
            f"(at most {MAX_ANNOTATION})"
        )
    return text


def decode_workers(text: object, origin: str = "pod") -> dict[str, WorkerMetadata]:
    """The workers an annotation value lists, by uid; what is malformed is logged (naming
    ``origin``) and skipped. A uid listed twice keeps its first record."""
    if not isinstance(text, str):
        return {}
    if len(text.encode()) > MAX_ANNOTATION:
        log.warning(
            "%s: ignoring a %s annotation larger than %d bytes",
            origin,
            WORKERS_ANNOTATION,
            MAX_ANNOTATION,
        )
        return {}
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        log.warning("%s: ignoring a malformed %s annotation: %s", origin, WORKERS_ANNOTATION, exc)
        return {}
    if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
        log.warning(
            "%s: ignoring a %s annotation that is not format version %d",
            origin,
            WORKERS_ANNOTATION,
            FORMAT_VERSION,
        )
        return {}
    records = document.get("workers")
    if not isinstance(records, list):
        log.warning(
            "%s: ignoring a %s annotation without a workers list", origin, WORKERS_ANNOTATION
        )
        return {}
    if len(records) > MAX_WORKERS:
        log.warning(
            "%s: reading only the first %d of %d workers", origin, MAX_WORKERS, len(records)
        )
    workers: dict[str, WorkerMetadata] = {}
    for index, record in enumerate(records[:MAX_WORKERS]):
        try:
            worker = decode_record(record)
        except ValueError as exc:
            log.warning("%s: skipping worker record %d: %s", origin, index, exc)
            continue
        workers.setdefault(worker.uid, worker)
    return workers


def decode_record(record: object) -> WorkerMetadata:
    """One worker record; ``ValueError`` naming the problem when it is malformed."""
    if not isinstance(record, dict):
        raise ValueError(f"a record must be a JSON object, got {type(record).__name__}")
    if len(_compact(record).encode()) > MAX_RECORD:
        raise ValueError(f"record larger than {MAX_RECORD} bytes")
    fields: dict[str, Any] = record
    for key in ("uid", "address", "version"):
        if not isinstance(fields.get(key), str) or not fields[key]:
            raise ValueError(f"{key} must be a non-empty string")
    pid = fields.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise ValueError(f"pid must be a positive integer, got {pid!r}")
    tags = fields.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError("tags must be a list of strings")
    secure = fields.get("secure", False)
    if not isinstance(secure, bool):
        raise ValueError(f"secure must be true or false, got {secure!r}")
    worker = WorkerMetadata.from_dict(fields)
    _check_fields(worker)
    return worker


def _check_fields(worker: WorkerMetadata) -> None:
    for name in ("uid", "address", "version"):
        if len(getattr(worker, name)) > MAX_TEXT:
            raise ValueError(f"{name} longer than {MAX_TEXT} characters")
    if len(worker.tags) > MAX_TAGS or any(len(t) > MAX_TEXT for t in worker.tags):
        raise ValueError(f"at most {MAX_TAGS} tags of at most {MAX_TEXT} characters")
    host, _, port = worker.address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address {worker.address!r} is not host:port")


def host_ip(worker: WorkerMetadata) -> str | None:
    """The worker's host as a normalised IP address, or ``None`` when it is a name."""
    try:
        return str(ipaddress.ip_address(worker.host))
    except ValueError:
        return None


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
