"""The annotation format: what is written reads back intact; what breaks the bounds is
refused when written and skipped when read."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.discovery_kubernetes.conftest import worker
from wool import WorkerMetadata
from wool_discovery_kubernetes import decode_workers, encode_workers

text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
workers = st.builds(
    WorkerMetadata,
    uid=text,
    address=st.builds(
        lambda host, port: f"{host}:{port}",
        st.sampled_from(["127.0.0.1", "[::1]", "10.244.3.7", "[fd00::12]"]),
        st.integers(1, 65535),
    ),
    pid=st.integers(1, 2**22),
    version=text,
    tags=st.frozensets(text, max_size=5),
    secure=st.booleans(),
)


@given(st.lists(workers, max_size=8, unique_by=lambda w: w.uid))
def test_what_is_written_reads_back_intact(published: list[WorkerMetadata]):
    assert decode_workers(encode_workers(published)) == {w.uid: w for w in published}


def test_too_many_workers_are_refused_when_written_and_cut_when_read():
    many = [worker(f"w{i}", f"127.0.0.1:{1000 + i}") for i in range(257)]
    with pytest.raises(ValueError, match="at most 256 workers"):
        encode_workers(many)
    document = json.dumps({"version": 1, "workers": [w.to_dict() for w in many]})
    assert len(decode_workers(document)) == 256


def test_a_uid_listed_twice_keeps_its_first_record():
    first, second = worker("same", "127.0.0.1:1"), worker("same", "127.0.0.1:2")
    document = json.dumps({"version": 1, "workers": [first.to_dict(), second.to_dict()]})
    assert decode_workers(document) == {"same": first}


@pytest.mark.parametrize(
    "document",
    [
        None,
        "",
        "[]",
        '{"version": 2, "workers": []}',
        '{"version": 1, "workers": {}}',
        "[" * 60_000,  # nested deeper than the parser goes
    ],
)
def test_what_is_not_a_version_1_document_counts_as_no_worker(document: object):
    assert decode_workers(document) == {}
