"""wool.plugins.private_directory and open_private: what they accept and what they refuse."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wool import plugins


def test_a_missing_directory_is_made_with_mode_0700_whatever_the_umask(tmp_path: Path):
    previous = os.umask(0)
    try:
        made = plugins.private_directory(tmp_path / "mine")
    finally:
        os.umask(previous)
    assert made == tmp_path / "mine"
    info = made.lstat()
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.geteuid()
    assert plugins.private_directory(made) == made  # found again


def test_a_directory_others_can_enter_is_refused(tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    with pytest.raises(PermissionError, match=r"has mode 0755: other users can reach"):
        plugins.private_directory(shared)


def test_a_symbolic_link_to_a_private_directory_is_refused(tmp_path: Path):
    real = plugins.private_directory(tmp_path / "real")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(PermissionError, match="is a symbolic link"):
        plugins.private_directory(link)


def test_a_file_where_the_directory_should_be_is_refused(tmp_path: Path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is not a directory"):
        plugins.private_directory(tmp_path / "file")


def test_the_override_variable_is_checked_like_the_default(monkeypatch, tmp_path: Path):
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    loose.chmod(0o777)
    monkeypatch.setenv(plugins.DIRECTORY_VARIABLE, str(loose))
    with pytest.raises(PermissionError, match=r"WOOL_LOCAL_DIR=.* has mode 0777"):
        plugins.private_directory()
    monkeypatch.setenv(plugins.DIRECTORY_VARIABLE, str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"WOOL_LOCAL_DIR=.* is not a directory"):
        plugins.private_directory()


def test_open_private_creates_exclusively_and_reopens(tmp_path: Path):
    path = tmp_path / "f"
    fd = plugins.open_private(path, os.O_RDWR, create=True)
    try:
        os.write(fd, b"data")
    finally:
        os.close(fd)
    assert stat.S_IMODE(path.lstat().st_mode) == 0o600
    fd = plugins.open_private(path, os.O_RDONLY)
    try:
        assert os.read(fd, 10) == b"data"
    finally:
        os.close(fd)


def test_open_private_truncates_only_after_checking(tmp_path: Path):
    target = tmp_path / "target"
    target.write_bytes(b"keep me")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(PermissionError, match="is a symbolic link"):
        plugins.open_private(link, os.O_WRONLY | os.O_TRUNC, create=True)
    assert target.read_bytes() == b"keep me"


def test_open_private_never_blocks_on_a_fifo(tmp_path: Path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(PermissionError, match="is not a regular file"):
        plugins.open_private(fifo, os.O_RDONLY)  # a blocking open would wait for a writer


def test_open_private_without_create_reports_a_missing_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        plugins.open_private(tmp_path / "missing", os.O_RDONLY)
    assert not (tmp_path / "missing").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_open_private_refuses_a_file_of_another_user(tmp_path: Path):
    path = tmp_path / "theirs"
    path.write_bytes(b"")
    os.chown(path, 65534, 65534)
    with pytest.raises(PermissionError, match="belongs to uid 65534"):
        plugins.open_private(path, os.O_RDWR, create=True)
