"""What wool reads from an X.509 certificate itself: the extended key usage of the leaf.

The ``ssl`` module parses certificates but does not expose this extension, so the DER
encoding (RFC 5280) is walked here, just far enough to reach it. The TLS libraries still
verify every certificate; this only lets wool say what is wrong before they refuse it.
"""

from __future__ import annotations

import ssl

SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
ANY_USAGE = "2.5.29.37.0"
USAGE_NAMES = {
    SERVER_AUTH: "serverAuth",
    CLIENT_AUTH: "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    ANY_USAGE: "anyExtendedKeyUsage",
}

_SEQUENCE = 0x30
_OID = 0x06
_OCTET_STRING = 0x04
_EXTENSIONS = 0xA3  # [3] EXPLICIT, in TBSCertificate
_EXTENDED_KEY_USAGE = "2.5.29.37"


def extended_key_usage(pem: bytes) -> frozenset[str] | None:
    """The dotted OIDs of the first certificate's extended key usage; None if it has none.

    A certificate without the extension may be used for any purpose. Raises
    ``ValueError`` when the certificate is not well-formed DER.
    """
    text = pem.decode("ascii")
    begin = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", begin) + len("-----END CERTIFICATE-----")
    der = ssl.PEM_cert_to_DER_cert(text[begin:end])
    certificate = _only(der, _SEQUENCE)
    tbs, _ = _element(certificate, 0, _SEQUENCE)
    for tag, value in _children(tbs):
        if tag != _EXTENSIONS:
            continue
        for _, extension in _children(_only(value, _SEQUENCE)):
            fields = list(_children(extension))
            if not fields or fields[0][0] != _OID or _dotted(fields[0][1]) != _EXTENDED_KEY_USAGE:
                continue
            tag, encoded = fields[-1]
            if tag != _OCTET_STRING:
                raise ValueError("malformed extendedKeyUsage extension")
            usages = _children(_only(encoded, _SEQUENCE))
            return frozenset(_dotted(oid) for kind, oid in usages if kind == _OID)
    return None


def usage_names(usages: frozenset[str] | None) -> str:
    """The usages by name, for messages: ``clientAuth, serverAuth``."""
    return ", ".join(sorted(USAGE_NAMES.get(u, u) for u in usages or ())) or "nothing"


def _element(data: bytes, offset: int, tag: int | None = None) -> tuple[bytes, int]:
    """The value of the element at ``offset`` and the offset after it."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER element")
    if tag is not None and data[offset] != tag:
        raise ValueError(f"expected DER tag {tag:#04x}, found {data[offset]:#04x}")
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        size = length & 0x7F
        if size == 0 or size > 4 or start + size > len(data):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[start : start + size], "big")
        start += size
    if start + length > len(data):
        raise ValueError("truncated DER element")
    return data[start : start + length], start + length


def _only(data: bytes, tag: int) -> bytes:
    value, end = _element(data, 0, tag)
    if end != len(data):
        raise ValueError("trailing bytes after a DER element")
    return value


def _children(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, value) pairs of the elements that make up ``data``."""
    children: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        tag = data[offset]
        value, offset = _element(data, offset)
        children.append((tag, value))
    return children


def _dotted(oid: bytes) -> str:
    """An OBJECT IDENTIFIER's value in dotted form."""
    if not oid:
        raise ValueError("empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for byte in oid:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))
