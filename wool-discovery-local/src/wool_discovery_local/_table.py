"""The byte layout of a namespace's shared-memory segment, and operations on it.

All integers are little-endian::

    header      magic "WOOLLDSC", layout version, slot count, slot size,
                attacher capacity (u32 each), generation (u64); padded to 64 bytes
    attachers   ATTACHER_CAPACITY x (pid i64, start time u64, token u64); pid 0 = free
    slots       SLOT_COUNT x SLOT_SIZE bytes: state, length, crc32, reserved (u32 each),
                pid start time, sequence (u64 each), then ``length`` bytes of the JSON
                of ``WorkerMetadata.to_dict()``

``generation`` grows by one with every change; ``sequence`` is the generation at which a
worker was first inserted, so that workers are announced in the order they came.

A :class:`Table` only interprets the bytes; its callers hold the namespace lock.
"""

from __future__ import annotations

import json
import logging
import mmap
import struct
import zlib
from typing import Final

import attrs

from wool import WorkerMetadata

log = logging.getLogger(__name__)

MAGIC: Final = b"WOOLLDSC"
LAYOUT_VERSION: Final = 1

HEADER: Final = struct.Struct("<8sIIIIQ")
HEADER_SIZE: Final = 64
GENERATION: Final = struct.Struct("<Q")
GENERATION_OFFSET: Final = 24

ATTACHER: Final = struct.Struct("<qQQ")
ATTACHER_CAPACITY: Final = 1024
ATTACHERS_OFFSET: Final = HEADER_SIZE

SLOT_HEADER: Final = struct.Struct("<IIIIQQ")
SLOT_SIZE: Final = 2048
SLOT_COUNT: Final = 512
SLOTS_OFFSET: Final = ATTACHERS_OFFSET + ATTACHER.size * ATTACHER_CAPACITY
PAYLOAD_CAPACITY: Final = SLOT_SIZE - SLOT_HEADER.size

SEGMENT_SIZE: Final = SLOTS_OFFSET + SLOT_SIZE * SLOT_COUNT

FREE: Final = 0
USED: Final = 1


@attrs.frozen
class Attacher:
    """A registered attachment: a publisher or a subscriber iteration of process ``pid``."""

    index: int
    pid: int
    started: int
    token: int


@attrs.frozen
class Record:
    """A worker as stored in slot ``slot``."""

    slot: int
    metadata: WorkerMetadata
    started: int
    """Start time of ``metadata.pid`` when published (0 if unknown)."""
    sequence: int


def encode(metadata: WorkerMetadata) -> bytes:
    """The stored form of ``metadata``; ``ValueError`` if it does not fit in a slot."""
    payload = json.dumps(metadata.to_dict(), separators=(",", ":"), sort_keys=True).encode()
    if len(payload) > PAYLOAD_CAPACITY:
        raise ValueError(
            f"worker {metadata.uid!r} is {len(payload)} bytes as JSON; "
            f"a local discovery slot holds at most {PAYLOAD_CAPACITY}"
        )
    return payload


class Table:
    """The segment's contents, read and written in place through ``buffer``."""

    def __init__(self, buffer: mmap.mmap, name: str = "segment") -> None:
        self._buf = buffer
        self._name = name

    # -- header ----------------------------------------------------------------------------

    def initialize(self) -> None:
        """Write a fresh header over a zero-filled segment."""
        HEADER.pack_into(
            self._buf, 0, MAGIC, LAYOUT_VERSION, SLOT_COUNT, SLOT_SIZE, ATTACHER_CAPACITY, 0
        )

    def check(self) -> None:
        """Raise ``RuntimeError`` unless the header describes this very layout."""
        magic, version, slots, slot_size, attachers, _ = HEADER.unpack_from(self._buf, 0)
        if (magic, version, slots, slot_size, attachers) != (
            MAGIC,
            LAYOUT_VERSION,
            SLOT_COUNT,
            SLOT_SIZE,
            ATTACHER_CAPACITY,
        ):
            raise RuntimeError(
                f"{self._name} is not a wool-discovery-local segment of layout "
                f"{LAYOUT_VERSION} (another wool version?); remove it or use another namespace"
            )

    @property
    def generation(self) -> int:
        """The change counter; safe to peek at without the lock (a torn read only costs a
        needless rescan)."""
        return GENERATION.unpack_from(self._buf, GENERATION_OFFSET)[0]

    def _bump(self) -> int:
        generation = self.generation + 1
        GENERATION.pack_into(self._buf, GENERATION_OFFSET, generation)
        return generation

    # -- attachers -------------------------------------------------------------------------

    def attachers(self) -> list[Attacher]:
        """Every registered attachment."""
        table = self._buf[ATTACHERS_OFFSET : ATTACHERS_OFFSET + ATTACHER.size * ATTACHER_CAPACITY]
        return [
            Attacher(i, pid, started, token)
            for i, (pid, started, token) in enumerate(ATTACHER.iter_unpack(table))
            if pid
        ]

    def add_attacher(self, pid: int, started: int, token: int) -> None:
        """Register an attachment; ``RuntimeError`` if the table is full."""
        used = {a.index for a in self.attachers()}
        for index in range(ATTACHER_CAPACITY):
            if index not in used:
                ATTACHER.pack_into(
                    self._buf, ATTACHERS_OFFSET + index * ATTACHER.size, pid, started, token
                )
                return
        raise RuntimeError(
            f"{self._name} already has {ATTACHER_CAPACITY} attachments; close some first"
        )

    def remove_attacher(self, index: int) -> None:
        """Clear the attachment at ``index``."""
        ATTACHER.pack_into(self._buf, ATTACHERS_OFFSET + index * ATTACHER.size, 0, 0, 0)

    # -- worker records --------------------------------------------------------------------

    def records(self) -> list[Record]:
        """Every valid worker record, in insertion order.

        A slot that fails its checksum or does not hold a worker record is logged and freed.
        """
        found: list[Record] = []
        for slot in range(SLOT_COUNT):
            offset = SLOTS_OFFSET + slot * SLOT_SIZE
            state, length, crc, _, started, sequence = SLOT_HEADER.unpack_from(self._buf, offset)
            if state == FREE:
                continue
            try:
                if state != USED:
                    raise ValueError(f"unknown slot state {state}")
                if length > PAYLOAD_CAPACITY:
                    raise ValueError(f"length {length} exceeds the slot")
                start = offset + SLOT_HEADER.size
                payload = self._buf[start : start + length]
                if zlib.crc32(payload) != crc:
                    raise ValueError("checksum mismatch")
                metadata = WorkerMetadata.from_dict(json.loads(payload))
            except Exception as exc:  # whatever the bytes are, never crash a reader
                log.warning(
                    "%s: skipping corrupt worker record in slot %d: %s", self._name, slot, exc
                )
                self.free(slot)
                continue
            found.append(Record(slot, metadata, started, sequence))
        found.sort(key=lambda r: (r.sequence, r.slot))
        return found

    def put(self, metadata: WorkerMetadata, started: int) -> bool:
        """Insert ``metadata``, or replace the record with its uid; ``False`` if unchanged."""
        payload = encode(metadata)
        records = self.records()
        existing = next((r for r in records if r.metadata.uid == metadata.uid), None)
        if existing is not None:
            if existing.metadata == metadata and existing.started == started:
                return False
            slot, sequence = existing.slot, existing.sequence
        else:
            used = {r.slot for r in records}
            slot = next((i for i in range(SLOT_COUNT) if i not in used), -1)
            if slot < 0:
                raise RuntimeError(f"{self._name} is full: it holds {SLOT_COUNT} workers")
            sequence = self.generation + 1
        offset = SLOTS_OFFSET + slot * SLOT_SIZE
        start = offset + SLOT_HEADER.size
        self._buf[start : start + len(payload)] = payload
        crc = zlib.crc32(payload)
        SLOT_HEADER.pack_into(self._buf, offset, USED, len(payload), crc, 0, started, sequence)
        self._bump()
        return True

    def remove(self, uid: str) -> bool:
        """Remove the record of worker ``uid``; ``False`` if there was none."""
        for record in self.records():
            if record.metadata.uid == uid:
                self.free(record.slot)
                return True
        return False

    def free(self, slot: int) -> None:
        """Mark ``slot`` free."""
        SLOT_HEADER.pack_into(self._buf, SLOTS_OFFSET + slot * SLOT_SIZE, FREE, 0, 0, 0, 0, 0)
        self._bump()
