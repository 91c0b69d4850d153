"""LocalDiscovery: the publisher and subscriber of one namespace, together."""

from __future__ import annotations

from typing import Any

from wool_discovery_local._lock import DEFAULT_TIMEOUT
from wool_discovery_local._names import validate_namespace
from wool_discovery_local._publisher import LocalPublisher
from wool_discovery_local._subscriber import DEFAULT_POLL_INTERVAL, LocalSubscriber


class LocalDiscovery:
    """Shared-memory discovery for the worker processes of one machine.

    Every process of this user on the host that uses the same ``namespace`` shares one
    table of workers: a memory-mapped segment named ``wool-<namespace>.shm``, guarded by
    the lock file ``wool-<namespace>.lock``, with change notifications through the folder
    ``wool-<namespace>.d``, all in the user's private directory
    (:func:`wool.plugins.private_directory`: ``/dev/shm/wool-<uid>``, mode 0700, or
    ``$WOOL_LOCAL_DIR``). Other users' namespaces are separate, even with the same name.
    The files exist while something is attached and are removed by the last one to
    leave; leftovers of a crashed process are reclaimed by the next one to attach, and
    every attach also removes the files of the other namespaces of the directory that no
    live process is attached to (the private namespace of a pool whose process was
    killed, say).

    A namespace is 1 to 100 ASCII letters, digits, ``_``, ``.`` or ``-``; anything else
    raises ``ValueError``. ``poll_interval`` is how often subscribers rescan in case a
    notification was missed; ``lock_timeout`` bounds every wait for the namespace lock.
    """

    def __init__(
        self,
        namespace: str = "default",
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        lock_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._namespace = validate_namespace(namespace)
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval!r}")
        if not lock_timeout > 0:
            raise ValueError(f"lock_timeout must be positive, got {lock_timeout!r}")
        self._poll_interval = float(poll_interval)
        self._lock_timeout = float(lock_timeout)
        self._publisher: LocalPublisher | None = None

    @property
    def namespace(self) -> str:
        """The namespace's name."""
        return self._namespace

    @property
    def publisher(self) -> LocalPublisher:
        """This discovery's publisher (the same object every time)."""
        if self._publisher is None:
            self._publisher = LocalPublisher(self._namespace, lock_timeout=self._lock_timeout)
        return self._publisher

    @property
    def subscriber(self) -> LocalSubscriber:
        """A subscriber to this namespace; picklable."""
        return LocalSubscriber(self._namespace, self._poll_interval, self._lock_timeout)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "namespace": self._namespace,
            "poll_interval": self._poll_interval,
            "lock_timeout": self._lock_timeout,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["namespace"],
            poll_interval=state["poll_interval"],
            lock_timeout=state["lock_timeout"],
        )

    def __repr__(self) -> str:
        return f"LocalDiscovery({self._namespace!r})"
