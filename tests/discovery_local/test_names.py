"""Namespace validation and the names a namespace's files get."""

from __future__ import annotations

import os
import stat

import pytest

from wool import _private_files
from wool_discovery_local import LocalDiscovery
from wool_discovery_local._names import Paths, base_directory


@pytest.mark.parametrize("name", ["default", "pool-0123abcd", "A.b_c-9", "x" * 100, "..", "-"])
def test_valid_namespaces_are_accepted(name: str):
    assert LocalDiscovery(name).namespace == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "must not be empty"),
        ("x" * 101, "101 characters long"),
        ("a/b", "'/'"),
        ("with space", "' '"),
        ("caf\u00e9", "'\u00e9'"),
        ("nul\0", "'\\x00'"),
    ],
)
def test_invalid_namespaces_raise_a_value_error_naming_the_problem(name: str, problem: str):
    with pytest.raises(ValueError, match="namespace") as error:
        LocalDiscovery(name)
    assert problem in str(error.value)


def test_a_namespace_must_be_a_string():
    with pytest.raises(TypeError, match="namespace must be a str"):
        LocalDiscovery(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("option", ["poll_interval", "lock_timeout"])
def test_intervals_must_be_positive(option: str):
    with pytest.raises(ValueError, match=option):
        LocalDiscovery("x", **{option: 0})


def test_every_file_of_a_namespace_is_named_after_it_in_one_folder():
    paths = Paths.of("pool-1")
    assert {p.parent for p in (paths.segment, paths.lock, paths.notify)} == {base_directory()}
    assert [p.name for p in (paths.segment, paths.lock, paths.notify)] == [
        "wool-pool-1.shm",
        "wool-pool-1.lock",
        "wool-pool-1.d",
    ]


def test_files_of_different_namespaces_never_collide():
    a, b = Paths.of("a"), Paths.of("a.lock")
    assert {a.segment, a.lock, a.notify}.isdisjoint({b.segment, b.lock, b.notify})


def test_segments_live_in_a_private_folder_of_dev_shm_unless_told_otherwise(monkeypatch, tmp_path):
    shm = tmp_path / "shm"  # stands for /dev/shm, so that the test leaves nothing there
    shm.mkdir(mode=0o1777)
    monkeypatch.setattr(_private_files, "_SHM", shm)
    monkeypatch.delenv("WOOL_LOCAL_DIR", raising=False)
    private = shm / f"wool-{os.geteuid()}"
    assert base_directory() == private
    assert stat.S_IMODE(private.lstat().st_mode) == 0o700
    assert base_directory() == private  # found again, not made twice
    monkeypatch.setenv("WOOL_LOCAL_DIR", str(tmp_path))
    assert base_directory() == tmp_path
    monkeypatch.setenv("WOOL_LOCAL_DIR", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="WOOL_LOCAL_DIR=.* is not a directory"):
        base_directory()
