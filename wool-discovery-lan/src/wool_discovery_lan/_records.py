"""The DNS-SD form of a worker: instance and host names, and the TXT record.

TXT record (format version 1), one ``key=value`` string per field, UTF-8::

    txtvers=1
    uid=<WorkerMetadata.uid>
    address=<WorkerMetadata.address, host:port as callers dial it>
    pid=<decimal>
    version=<WorkerMetadata.version>
    secure=<1|0>
    tags=<JSON array of strings, sorted>      (or tags.0=, tags.1=, ... when longer)
    seq=<decimal>                             (grows with every publication of the uid)

Keys are matched case-insensitively and the first occurrence of a key wins (RFC 6763
section 6.4). Each string is at most 255 bytes; a tag list too long for one string is
split into numbered chunks that are concatenated in order.

``seq`` orders the publications of one worker: mDNS responders may send an answer they
queued a moment before the record changed or was withdrawn, and subscribers ignore a
record older than one they already have (or than one withdrawn with a goodbye).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re

from zeroconf import (
    BadTypeInNameException,
    service_type_name,  # pyright: ignore[reportPrivateImportUsage] - a documented re-export
)

from wool import WorkerMetadata

TXT_VERSION = "1"
MAX_STRING = 255
"""The longest ``key=value`` string a TXT record can hold (one length byte)."""
MAX_TXT = 1300
"""The largest TXT record published: RFC 6763 section 6.2 keeps it within one packet."""
MAX_TXT_RECEIVED = 9000
"""The largest TXT record read; a larger one (it cannot be one of ours) is ignored."""
MAX_TAGS_DEPTH = 2
"""Tags are a flat JSON array: deeper nesting is refused before it is parsed."""
MAX_SEQ_DIGITS = 20
"""A ``seq`` longer than this (more than 64 bits) is not a number we read."""

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_TAG_CHUNK = 240


def validate_service_type(service_type: str) -> str:
    """``service_type`` if it is a DNS-SD service type (``_name._tcp.local.``), else
    ``ValueError``."""
    if not isinstance(service_type, str):
        raise TypeError(f"service_type must be a string, got {service_type!r}")
    try:
        service_type_name(service_type, strict=True)
    except BadTypeInNameException as exc:
        raise ValueError(f"bad service type {service_type!r}: {exc}") from None
    return service_type


def instance_label(uid: str) -> str:
    """The DNS label naming a worker's service instance: its uid when that is a plain
    DNS-friendly label, else ``wool-`` and a digest of it (the TXT record has the uid)."""
    if _LABEL.fullmatch(uid):
        return uid
    return "wool-" + hashlib.sha256(uid.encode()).hexdigest()[:24]


def service_name(uid: str, service_type: str) -> str:
    """The fully qualified service instance name, ``<label>.<service_type>``."""
    return f"{instance_label(uid)}.{service_type}"


def server_name(uid: str) -> str:
    """The host name the SRV record points to and the A/AAAA record names."""
    return f"{instance_label(uid)}.local."


def address_literal(metadata: WorkerMetadata) -> str | None:
    """The worker's host as an IP address literal, or ``None`` when it is a name."""
    try:
        return str(ipaddress.ip_address(metadata.host))
    except ValueError:
        return None


def encode_txt(metadata: WorkerMetadata, seq: int = 0) -> dict[str, str]:
    """The TXT properties of ``metadata`` (publication number ``seq``), in order.

    Raises ``ValueError`` when a field does not fit in a TXT string or the record would
    exceed :data:`MAX_TXT` bytes.
    """
    properties = {
        "txtvers": TXT_VERSION,
        "uid": metadata.uid,
        "address": metadata.address,
        "pid": str(metadata.pid),
        "version": metadata.version,
        "secure": "1" if metadata.secure else "0",
    }
    tags = json.dumps(sorted(metadata.tags), ensure_ascii=False, separators=(",", ":"))
    if len(f"tags={tags}".encode()) <= MAX_STRING:
        properties["tags"] = tags
    else:
        for index, chunk in enumerate(_chunks(tags)):
            properties[f"tags.{index}"] = chunk
    properties["seq"] = str(seq)
    size = 0
    for key, value in properties.items():
        length = len(f"{key}={value}".encode())
        if length > MAX_STRING:
            raise ValueError(
                f"worker {metadata.uid!r}: {key} does not fit in a TXT string "
                f"({length} > {MAX_STRING} bytes)"
            )
        size += 1 + length
    if size > MAX_TXT:
        raise ValueError(
            f"worker {metadata.uid!r}: its TXT record would take {size} bytes "
            f"(at most {MAX_TXT}); use fewer or shorter tags"
        )
    return properties


def _chunks(text: str) -> list[str]:
    """Split ``text`` into pieces of at most ``_TAG_CHUNK`` UTF-8 bytes, on character
    boundaries."""
    chunks: list[str] = []
    current = ""
    for char in text:
        if len((current + char).encode()) > _TAG_CHUNK:
            chunks.append(current)
            current = ""
        current += char
    chunks.append(current)
    return chunks


def txt_bytes(properties: dict[str, str]) -> bytes:
    """The wire form of TXT properties: length-prefixed ``key=value`` strings."""
    out = bytearray()
    for key, value in properties.items():
        item = f"{key}={value}".encode()
        out.append(len(item))
        out += item
    return bytes(out)


def parse_txt(text: bytes) -> dict[str, str]:
    """TXT wire data to properties: lower-cased keys, first occurrence wins; strings that
    are not valid UTF-8 or have no key are skipped."""
    properties: dict[str, str] = {}
    position = 0
    while position < len(text):
        length = text[position]
        item = text[position + 1 : position + 1 + length]
        position += 1 + length
        try:
            decoded = item.decode()
        except UnicodeDecodeError:
            continue
        key, _, value = decoded.partition("=")
        key = key.lower()
        if key and key not in properties:
            properties[key] = value
    return properties


def txt_seq(text: bytes) -> int:
    """The ``seq`` of a TXT record; 0 when it has none or it is not plain ASCII digits
    (``"²"`` is a digit to ``str.isdigit`` but not to ``int``), at most 20 of them."""
    value = parse_txt(text).get("seq", "")
    if value.isascii() and value.isdigit() and len(value) <= MAX_SEQ_DIGITS:
        return int(value)
    return 0


def _nesting(text: str) -> int:
    """How deeply JSON arrays and objects nest in ``text`` (brackets in strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def decode_txt(text: bytes) -> WorkerMetadata:
    """The worker a TXT record describes; ``ValueError`` when it is not a wool record of a
    known format version."""
    if len(text) > MAX_TXT_RECEIVED:
        raise ValueError(f"TXT record of {len(text)} bytes, over {MAX_TXT_RECEIVED}")
    properties = parse_txt(text)
    if properties.get("txtvers") != TXT_VERSION:
        raise ValueError(f"not a wool TXT record of version {TXT_VERSION}: {properties!r}")
    if "tags" in properties:
        tags_json = properties["tags"]
    else:
        pieces = []
        index = 0
        while f"tags.{index}" in properties:
            pieces.append(properties[f"tags.{index}"])
            index += 1
        tags_json = "".join(pieces) or "[]"
    if _nesting(tags_json) > MAX_TAGS_DEPTH:
        raise ValueError(
            f"malformed tags: nested deeper than a list of strings ({len(tags_json)} bytes)"
        )
    try:
        tags = json.loads(tags_json)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"malformed tags {tags_json!r}: {exc}") from None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError(f"tags must be a JSON array of strings, got {tags_json!r}")
    secure = properties.get("secure", "0")
    if secure not in ("0", "1"):
        raise ValueError(f"secure must be 0 or 1, got {secure!r}")
    missing = [key for key in ("uid", "address", "pid", "version") if key not in properties]
    if missing or not properties["uid"]:
        raise ValueError(
            f"incomplete wool TXT record (missing {missing or ['uid']}): {properties!r}"
        )
    metadata = WorkerMetadata.from_dict(
        {
            "uid": properties["uid"],
            "address": properties["address"],
            "pid": properties["pid"],
            "version": properties["version"],
            "tags": tags,
            "secure": secure == "1",
        }
    )
    host, _, port = metadata.address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"malformed address {metadata.address!r}")
    return metadata
