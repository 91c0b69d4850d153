"""Another user of the same machine attacks root's wool (issue 10, items 1 to 4).

Each test creates nothing itself: a throwaway unprivileged user (made for this module,
removed after it with everything it made) runs the attack inside a private mount
namespace with a fresh ``/dev/shm``, and root's side runs the way a user would, with
wool's default directory. Each of these attacks succeeded before wool kept its files and
sockets in a private per-user directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.security import intruder as intruders
from tests.security.local_attack import PRECIOUS

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def intruder() -> Iterator[intruders.Intruder]:
    reason = intruders.unavailable()
    if reason:
        pytest.skip(reason)
    with intruders.throwaway_user() as user:
        yield user


def test_a_symlink_planted_in_a_namespace_folder_truncates_nothing(intruder):
    """Item 1 as filed: ``mkdir -m777 /dev/shm/wool-shared.d; ln -s FILE .../changed``."""
    result = intruder.attack("symlink-in-namespace")
    assert "planted" in result["planted"], result
    assert result["victim"]["stdout"] == "published", result
    assert result["precious"] == PRECIOUS.decode()


def test_a_private_directory_made_by_another_user_is_refused(intruder):
    """The intruder makes ``/dev/shm/wool-0`` (world-writable, theirs) before root does."""
    result = intruder.attack("symlink-in-private-directory")
    assert "planted" in result["planted"], result
    victim = result["victim"]
    assert victim["returncode"] != 0
    assert "PermissionError: /dev/shm/wool-0 belongs to uid" in victim["stderr"]
    assert "refuses to use it" in victim["stderr"]
    assert result["precious"] == PRECIOUS.decode()


def test_another_users_worker_record_never_reaches_roots_callers(intruder):
    """Item 2: the intruder publishes first in namespace "shared", root then uses it."""
    result = intruder.attack("takeover")
    assert "intruder-worker" in result["published"], result
    assert json.loads(result["victim"]["stdout"]) == ["root-marker"], result
    assert json.loads(result["rogue"]) == {"connected": False}


def test_a_fifo_planted_in_dev_shm_hangs_nothing(intruder):
    """Item 3: ``mkfifo /dev/shm/wool-zzz.shm`` before root attaches a namespace."""
    result = intruder.attack("fifo")
    assert "planted" in result["planted"], result
    assert result["victim"]["completed"], "attaching hung on the intruder's FIFO"
    assert result["victim"]["stdout"] == "attached", result


@pytest.mark.parametrize("scenario", ["default-pool", "cli-worker"])
def test_another_user_cannot_run_code_in_a_default_worker(intruder, scenario):
    """Item 4: the intruder dials the worker of a default pool / ``wool worker``."""
    result = intruder.attack(scenario)
    assert result["worker"]["address"].startswith("unix:/dev/shm/wool-0/"), result
    assert result["intruder"]["ran"] is False, result
    assert "Permission denied" in result["intruder"]["error"], result
    assert result["marker"] is False
