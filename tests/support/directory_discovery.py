"""A discovery written the way a third party would: plain classes, no wool base class.

Each published worker is a JSON file in a directory; subscribers rescan it. It exists to
prove that structural subtyping is all a discovery needs.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

from wool import DiscoveryEvent, WorkerMetadata

SCAN_INTERVAL = 0.05


class DirectoryPublisher:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.published: set[str] = set()

    async def __aenter__(self) -> DirectoryPublisher:
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for uid in self.published:
            (self.root / f"{uid}.json").unlink(missing_ok=True)
        self.published.clear()

    async def publish(self, event: DiscoveryEvent) -> None:
        path = self.root / f"{event.metadata.uid}.json"
        if event.type == "worker-dropped":
            path.unlink(missing_ok=True)
            self.published.discard(event.metadata.uid)
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(event.metadata.to_dict()))
        os.replace(tmp, path)
        self.published.add(event.metadata.uid)


class DirectorySubscriber:
    def __init__(self, root: Path) -> None:
        self.root = root

    def __aiter__(self) -> AsyncIterator[DiscoveryEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[DiscoveryEvent]:
        known: dict[str, WorkerMetadata] = {}
        while True:
            current = {}
            for path in self.root.glob("*.json") if self.root.exists() else ():
                try:
                    metadata = WorkerMetadata.from_dict(json.loads(path.read_text()))
                except (OSError, ValueError):
                    continue
                current[metadata.uid] = metadata
            for uid, metadata in current.items():
                if uid not in known:
                    yield DiscoveryEvent("worker-added", metadata)
                elif known[uid] != metadata:
                    yield DiscoveryEvent("worker-updated", metadata)
            for uid in known.keys() - current.keys():
                yield DiscoveryEvent("worker-dropped", known[uid])
            known = current
            await asyncio.sleep(SCAN_INTERVAL)


class DirectoryDiscovery:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._publisher = DirectoryPublisher(self.root)

    @property
    def publisher(self) -> DirectoryPublisher:
        return self._publisher

    @property
    def subscriber(self) -> DirectorySubscriber:
        return DirectorySubscriber(self.root)
