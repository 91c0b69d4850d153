"""List then watch the pods of one namespace that match a label selector.

The watch resumes from the last resource version it saw (an event's object, or a
``BOOKMARK``) when its stream closes or breaks; when the API server answers
``410 Gone`` (that version is no longer in its history) it lists the pods again, and
the caller compares the new list with what it knew.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from kubernetes_asyncio import client

from wool_discovery_kubernetes._pods import pod_name
from wool_discovery_kubernetes._raw import raw

log = logging.getLogger(__name__)

LIST_PAGE = 500
"""Pods asked for per list request."""
WATCH_SECONDS = (300, 600)
"""A watch asks the server to end it after a random time in this range (seconds), as
client-go does, so that watches spread over the API servers."""
CONNECT_TIMEOUT = 10.0
READ_MARGIN = 60.0
"""Seconds of silence beyond the watch's own timeout after which the stream is
considered broken (servers send a bookmark about every minute)."""
RETRY_FIRST = 0.5
RETRY_MAX = 30.0
MAX_LINE = 4 * 1024 * 1024
"""The longest watch event read (etcd stores objects of at most 1.5 MiB)."""


class _Gone(Exception):
    """The API server no longer has the requested resource version: list again."""


class _Refused(Exception):
    """The API server refused a request (an HTTP error status other than 410)."""


class PodWatch:
    """The pods of ``namespace`` matching ``selector``, kept current.

    ``pods`` maps pod names to the latest object seen; :meth:`changes` yields the names
    of the pods that changed (in ``pods``) or went away (no longer in ``pods``).
    """

    def __init__(self, api: client.CoreV1Api, namespace: str, selector: str) -> None:
        self.api = api
        self.namespace = namespace
        self.selector = selector
        self.pods: dict[str, dict[str, Any]] = {}

    async def changes(self) -> AsyncIterator[set[str]]:
        """Names of changed pods, after the first list (which may be an empty set) and
        after every watch event or re-list that changed something."""
        version: str | None = None
        delay = RETRY_FIRST
        while True:
            try:
                if version is None:
                    pods, version = await self._list()
                    changed = {
                        n for n in self.pods.keys() | pods.keys() if self.pods.get(n) != pods.get(n)
                    }
                    self.pods = pods
                    yield changed
                received = False
                async for names, reached in self._watch(version):
                    version, delay, received = reached, RETRY_FIRST, True
                    if names:
                        yield names
                if not received:  # a stream that ends at once, again and again: back off
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
            except _Gone:
                log.info(
                    "pods in %s: resource version %s is gone; listing again",
                    self.namespace,
                    version,
                )
                version = None
            except (_Refused, aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                log.warning(
                    "pods in %s: %s: %s; retrying in %.1f s",
                    self.namespace,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def _list(self) -> tuple[dict[str, dict[str, Any]], str]:
        pods: dict[str, dict[str, Any]] = {}
        token: str | None = None
        while True:
            options: dict[str, Any] = {"label_selector": self.selector, "limit": LIST_PAGE}
            if token:
                options["_continue"] = token
            response = await raw(
                self.api.list_namespaced_pod(
                    self.namespace,
                    _preload_content=False,
                    _request_timeout=aiohttp.ClientTimeout(
                        total=READ_MARGIN, connect=CONNECT_TIMEOUT
                    ),
                    **options,
                )
            )
            try:
                _check(response, "list pods")
                document = json.loads(await response.read())
            finally:
                response.release()
            if not isinstance(document, dict):
                raise ValueError("the pod list is not a JSON object")
            items = document.get("items") or []
            metadata = document.get("metadata") or {}
            if not isinstance(items, list) or not isinstance(metadata, dict):
                raise ValueError("malformed pod list")
            for item in items:
                if isinstance(item, dict) and (name := pod_name(item)):
                    pods[name] = item
            token = metadata.get("continue")
            if not token:
                version = metadata.get("resourceVersion")
                if not isinstance(version, str) or not version:
                    raise ValueError("the pod list has no resourceVersion")
                return pods, version

    async def _watch(self, version: str) -> AsyncIterator[tuple[set[str], str]]:
        """Watch from ``version``; yields the changed names and the version reached,
        until the server ends the stream."""
        seconds = random.randint(*WATCH_SECONDS)
        response = await raw(
            self.api.list_namespaced_pod(
                self.namespace,
                label_selector=self.selector,
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=version,
                timeout_seconds=seconds,
                _preload_content=False,
                _request_timeout=aiohttp.ClientTimeout(
                    connect=CONNECT_TIMEOUT, sock_read=seconds + READ_MARGIN
                ),
            )
        )
        try:
            _check(response, "watch pods")
            while line := await response.content.readline():
                if len(line) > MAX_LINE:
                    raise ValueError(f"a watch event larger than {MAX_LINE} bytes")
                if not line.strip():
                    continue
                event = json.loads(line)
                names, version = self._apply(event, version)
                yield names, version
        finally:
            response.close()

    def _apply(self, event: object, version: str) -> tuple[set[str], str]:
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            raise ValueError(f"malformed watch event {str(event)[:200]}")
        kind, obj = event.get("type"), event["object"]
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone()
            raise _Refused(f"watch error {obj.get('code')}: {obj.get('message')}")
        metadata = obj.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("resourceVersion"), str):
            version = metadata["resourceVersion"]
        if kind == "BOOKMARK":
            return set(), version
        name = pod_name(obj)
        if name is None or kind not in ("ADDED", "MODIFIED", "DELETED"):
            return set(), version
        if kind == "DELETED":
            self.pods.pop(name, None)
        else:
            self.pods[name] = obj
        return {name}, version


def _check(response: aiohttp.ClientResponse, what: str) -> None:
    if response.status == 410:
        raise _Gone()
    if not 200 <= response.status < 300:
        hint = ""
        if response.status in (401, 403):
            hint = " (the service account needs a Role allowing get, list, watch, patch on pods)"
        raise _Refused(f"{what}: HTTP {response.status} {response.reason}{hint}")
