"""Transport settings shared by callers and workers: gRPC options, limits, status codes."""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from wool._settings import current

PROTOCOL_VERSION = "1"
PROTOCOL_HEADER = "wool-protocol"
SESSION_METHOD = "/wool.v1.Worker/Session"
LIMIT_HEADER = "wool-max-message"
"""Each side's WOOL_MAX_MESSAGE_BYTES, exchanged when a session opens; both use the smaller."""
ROUTINE_SLOTS_HEADER = "wool-routine-slots"
"""How many routines a worker keeps per session (``wool._routine_slots``)."""
CONCURRENCY_HEADER = "wool-concurrency"
"""A worker's concurrency limit, sent with its session answer when it has one: a caller
knows the worker is full before its first load report arrives."""
SESSION_HEADER = "wool-session"
DRAINED = "drained"
"""Trailer value of a session the worker ended because it is stopping: any call it had
not accepted was never started, so another worker may take it."""


def max_message_bytes() -> int:
    """Largest frame either side sends or accepts (the ``max_message_bytes`` setting)."""
    return current().max_message_bytes


FRAME_OVERHEAD = 64 * 1024
"""Room a frame's envelope may take beyond its payload."""


Headers = Iterable[tuple[str, str | bytes]] | None
"""gRPC metadata: (key, value) pairs."""


def header_int(metadata: Headers, key: str) -> int | None:
    """The whole number the peer sent under ``key`` (None if absent or not a number)."""
    for name, value in metadata or ():
        if name == key:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def peer_limit(metadata: Headers) -> int:
    """The smaller of our message limit and the one the peer sent, if it sent one."""
    limit = header_int(metadata, LIMIT_HEADER)
    return max_message_bytes() if limit is None else min(max_message_bytes(), limit)


def peer_concurrency(metadata: Headers) -> int | None:
    """The concurrency limit a worker's session answer gives (None: unlimited, or not said)."""
    limit = header_int(metadata, CONCURRENCY_HEADER)
    return limit if limit is not None and limit > 0 else None


TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

# gRPC's own limits are fixed when the module loads, from the settings of this process.
_common: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", max_message_bytes()),
    ("grpc.max_receive_message_length", max_message_bytes()),
]

# Client pings every 10 s and gives up on a peer after 5 s more: a cut-off worker is
# noticed within 15 s. The server tolerates pings every 3 s (a margin of 3x) and never
# closes a connection for pinging too often (max_ping_strikes 0), so long-lived sessions
# stay clear of "too many pings".
CHANNEL_OPTIONS: list[tuple[str, int]] = _common + [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.enable_retries", 0),
]

SERVER_OPTIONS: list[tuple[str, int]] = _common + [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 3_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.so_reuseport", 0),
]

# Connections that hold a worker's file descriptors without doing anything. A TLS (or
# HTTP/2) handshake takes milliseconds: 10 s leaves room for a slow network and frees
# the descriptor of a peer that never starts one (gRPC's default is 120 s). A connection
# with no stream for 5 minutes is closed (callers reconnect on their next call; a caller's
# Session stream keeps its connection busy while it is in use). Each caller process opens
# one Session stream per worker and pool (gRPC shares one connection between a process's
# channels to a worker, and a worker keeps the proxy of every caller it served), so a
# connection carries as many streams as pools in the calling process: 1,024 is far above
# that, and bounds what idle streams cost (about 25 kB each) to some 25 MB a connection.
# A stream over the cap waits for one to end.
SERVER_HANDSHAKE_TIMEOUT_MS = 10_000
SERVER_CONNECTION_IDLE_MS = 300_000
SERVER_STREAMS_PER_CONNECTION = 1_024
SERVER_OPTIONS.extend(
    [
        ("grpc.server_handshake_timeout_ms", SERVER_HANDSHAKE_TIMEOUT_MS),
        ("grpc.max_connection_idle_ms", SERVER_CONNECTION_IDLE_MS),
        ("grpc.max_concurrent_streams", SERVER_STREAMS_PER_CONNECTION),
    ]
)
