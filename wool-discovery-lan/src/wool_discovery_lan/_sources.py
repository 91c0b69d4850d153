"""Which host sent the records zeroconf hands to a listener.

zeroconf calls a ``RecordUpdateListener`` with the records of one packet, but not with
the packet's sender. While it does, the listening protocol that received the packet
holds it as ``last_message`` (a public attribute of zeroconf's ``AsyncListener``), and
the records it passes are that message's own answer objects: finding the message whose
answers contain the first record gives the sender.
"""

from __future__ import annotations

from zeroconf import DNSRecord, Zeroconf  # pyright: ignore[reportPrivateImportUsage]


def packet_source(zeroconf: Zeroconf, now: float, record: DNSRecord) -> str | None:
    """The IP address that sent the packet ``record`` came in, or ``None`` when it cannot
    be told (records replayed from the cache, or a zeroconf that keeps no
    ``last_message``)."""
    engine = getattr(zeroconf, "engine", None)
    for protocol in getattr(engine, "protocols", ()):
        message = getattr(protocol, "last_message", None)
        if message is None or message.now != now or message.source is None:
            continue
        if any(answer is record for answer in message.answers()):
            return str(message.source[0])
    return None
