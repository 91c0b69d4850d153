"""A long-lived worker serving many caller pools that make nested calls: it keeps a
bounded set of caller proxies sharing one discovery subscription, so its threads and
descriptors do not grow per caller pool; and a subscriber that cannot get an inotify
instance falls back to rescans. (The soak, ``nox -s soak``, runs 2,000 caller pools.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import wool
from tests.reliability import routines as r
from tests.reliability.support import ROOT, ProcessStats, wool_worker

POOLS = 60
WARM_UP = 5
THREAD_MARGIN = 2
FD_MARGIN = 5


async def test_one_worker_serving_many_caller_pools_with_nested_calls_does_not_grow():
    namespace = f"long-lived-{os.getpid()}"
    async with wool_worker(namespace, "--size", "1") as pids:
        (worker,) = pids
        before: ProcessStats | None = None
        for number in range(POOLS):
            async with wool.WorkerPool(discovery=wool.LocalDiscovery(namespace)):
                assert await r.nested_add(number, 1) == number + 1
            if number == WARM_UP - 1:
                before = ProcessStats.of(worker)
        after = ProcessStats.of(worker)
    assert before is not None
    # Without sharing, each caller pool left a subscription behind on the worker: a
    # watchdog thread and an inotify descriptor (and more) per pool.
    assert after.threads <= before.threads + THREAD_MARGIN, (before, after)
    assert after.fds <= before.fds + FD_MARGIN, (before, after)


def _unshare_works() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run(
        [unshare, "-U", "-r", "sh", "-c", "echo 0 > /proc/sys/user/max_inotify_instances"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _unshare_works(),
    reason="needs unshare(1) and user namespaces whose inotify limit can be lowered",
)
def test_a_subscriber_without_inotify_instances_falls_back_to_rescans():
    # A user namespace of its own, with an inotify instance limit of 0: creating the
    # watchdog observer fails with EMFILE, as at the per-user limit of 128.
    script = (
        "echo 0 > /proc/sys/user/max_inotify_instances && "
        f"exec {sys.executable} -m tests.reliability._inotify_exhausted"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    done = subprocess.run(
        ["unshare", "-U", "-r", "sh", "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "seen": ["worker-added first", "worker-added second", "worker-dropped first"],
        "fallback logged": True,
    }, done.stderr[-2000:]
