"""The TXT record format and service names: pure functions, no network."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.discovery_lan.conftest import metadata
from wool import WorkerMetadata
from wool_discovery_lan import decode_txt, encode_txt
from wool_discovery_lan._records import (
    MAX_TXT,
    instance_label,
    parse_txt,
    service_name,
    txt_bytes,
    txt_seq,
)

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)
workers = st.builds(
    WorkerMetadata,
    uid=text,
    address=st.one_of(
        st.builds(lambda h, p: f"{h}:{p}", st.ip_addresses(v=4).map(str), st.integers(1, 65535)),
        st.builds(lambda h, p: f"[{h}]:{p}", st.ip_addresses(v=6).map(str), st.integers(1, 65535)),
        st.builds(lambda p: f"worker.example:{p}", st.integers(1, 65535)),
    ),
    pid=st.integers(1, 2**31),
    version=text,
    tags=st.frozensets(text, max_size=8),
    secure=st.booleans(),
)


@given(workers, st.integers(0, 2**62))
def test_every_worker_record_makes_the_round_trip(worker: WorkerMetadata, seq: int):
    wire = txt_bytes(encode_txt(worker, seq))
    assert decode_txt(wire) == worker
    assert txt_seq(wire) == seq


def test_the_record_is_plain_key_value_text_a_person_can_read():
    worker = metadata("w1", address="198.18.0.1:4242", tags={"gpu", "a,b"}, secure=True)
    properties = encode_txt(worker, 7)
    assert properties == {
        "txtvers": "1",
        "uid": "w1",
        "address": "198.18.0.1:4242",
        "pid": str(worker.pid),
        "version": "0.16.0",
        "secure": "1",
        "tags": '["a,b","gpu"]',
        "seq": "7",
    }


def test_a_long_tag_list_is_split_into_numbered_strings():
    tags = {f"tag-number-{i:03}" for i in range(40)}
    properties = encode_txt(metadata("w1", tags=tags))
    assert "tags" not in properties
    chunks = [k for k in properties if k.startswith("tags.")]
    assert len(chunks) > 1
    assert all(len(f"{k}={properties[k]}".encode()) <= 255 for k in properties)
    assert json.loads("".join(properties[k] for k in chunks)) == sorted(tags)
    assert decode_txt(txt_bytes(properties)).tags == tags


def test_a_record_too_big_for_a_packet_is_refused():
    with pytest.raises(ValueError, match="TXT record would take"):
        encode_txt(metadata("w1", tags={f"{i:0200}" for i in range(10)}))
    with pytest.raises(ValueError, match="does not fit in a TXT string"):
        encode_txt(metadata("w" * 300))
    assert MAX_TXT == 1300


def test_keys_are_case_insensitive_and_the_first_occurrence_wins():
    wire = txt_bytes(encode_txt(metadata("w1")))
    wire += txt_bytes({"UID": "other"})
    assert parse_txt(b"\x07UID=abc\x07uid=xyz")["uid"] == "abc"
    assert decode_txt(wire).uid == "w1"


def _record(**fields: str) -> bytes:
    base = {"txtvers": "1", "uid": "w", "address": "h:1", "pid": "1", "version": "v"}
    return txt_bytes({k: v for k, v in {**base, **fields}.items() if v is not None})


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", "not a wool TXT record"),
        (_record(txtvers="2"), "not a wool TXT record"),
        (_record(uid=None), "missing"),  # type: ignore[arg-type]
        (_record(uid=""), "missing"),
        (_record(pid="x"), "malformed worker record"),
        (_record(address="h"), "malformed address"),
        (_record(address="h:0"), "malformed address"),
        (_record(address=":1"), "malformed address"),
        (_record(tags="{"), "malformed tags"),
        (_record(tags="[1]"), "JSON array of strings"),
        (_record(secure="y"), "secure"),
    ],
    ids=lambda value: None if isinstance(value, bytes) else value,
)
def test_a_malformed_record_is_rejected(wire: bytes, reason: str):
    with pytest.raises(ValueError, match=reason):
        decode_txt(wire)


def test_strings_that_are_not_utf8_are_skipped():
    assert parse_txt(b"\x03a=b\x03\xff=c\x04c=d\xff") == {"a": "b"}


def test_a_missing_or_bad_seq_counts_as_zero():
    assert txt_seq(txt_bytes({"uid": "w"})) == 0
    assert txt_seq(txt_bytes({"seq": "-3"})) == 0


def test_instance_names_come_from_uids():
    assert instance_label("worker-AbC_123") == "worker-AbC_123"
    assert service_name("worker-1", "_wool._tcp.local.") == "worker-1._wool._tcp.local."
    odd = instance_label("has.dots and spaces")
    assert odd.startswith("wool-") and len(odd) <= 63
    assert odd == instance_label("has.dots and spaces")
    assert odd != instance_label("has.dots and spaces!")
    assert instance_label("x" * 64).startswith("wool-")


def _nested_tags(depth: int) -> dict[str, str]:
    nested = "[" * depth + "]" * depth
    return {f"tags.{i}": nested[i * 200 : (i + 1) * 200] for i in range(len(nested) // 200 + 1)}


def test_deeply_nested_tags_are_a_malformed_record_not_a_crash():
    wire = _record(**_nested_tags(3000))
    with pytest.raises(ValueError, match="nested deeper than a list of strings"):
        decode_txt(wire)


def test_tags_may_hold_brackets_and_quotes():
    worker = metadata("w1", tags={'[[["]]', "a\\\\[{b"})
    assert decode_txt(txt_bytes(encode_txt(worker))) == worker


@pytest.mark.parametrize("seq", ["²", "١٢٣", "1" * 21, "+5", " 5"])
def test_a_seq_that_is_not_plain_ascii_digits_counts_as_zero(seq: str):
    assert txt_seq(txt_bytes({"seq": seq})) == 0


def test_a_record_bigger_than_any_packet_is_refused():
    wire = _record(version="v") + txt_bytes({f"x{i}": "y" * 250 for i in range(40)})
    with pytest.raises(ValueError, match="TXT record of"):
        decode_txt(wire)
