"""An in-process stand-in for the Kubernetes API server: pods only, over real HTTP(S).

It serves what the discovery uses, as the real API server does: list (with pagination
and ``resourceVersion``), watch (JSON lines, ``ADDED``/``MODIFIED``/``DELETED``,
``BOOKMARK`` when asked for, ``ERROR`` with ``410 Gone`` for a version older than its
history), get, and JSON merge-patch (RFC 7386) of pods, with label selectors and bearer
tokens. It runs on an event loop in a thread of its own, so tests drive it from any
loop (or none) through the blocking methods below, which play the cluster: create pods,
make them ready, terminate or delete them, send bookmarks, close streams, compact the
history.
"""

from __future__ import annotations

import asyncio
import copy
import json
import ssl
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

Pod = dict[str, Any]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def selector_matches(selector: str, pod: Pod | None) -> bool:
    """Whether ``pod``'s labels satisfy an equality-based label selector."""
    if pod is None:
        return False
    labels = pod["metadata"].get("labels") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


class _Watch:
    def __init__(self, namespace: str, selector: str, bookmarks: bool) -> None:
        self.namespace = namespace
        self.selector = selector
        self.bookmarks = bookmarks
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def offer(self, kind: str, namespace: str, old: Pod | None, new: Pod) -> None:
        if namespace != self.namespace:
            return
        before, after = selector_matches(self.selector, old), selector_matches(self.selector, new)
        if kind == "DELETED":
            if before or after:
                self.queue.put_nowait({"type": "DELETED", "object": new})
        elif before and after:
            self.queue.put_nowait({"type": kind, "object": new})
        elif after:
            self.queue.put_nowait({"type": "ADDED", "object": new})
        elif before:
            self.queue.put_nowait({"type": "DELETED", "object": new})


class FakeKubeAPI:
    """Serve pods on 127.0.0.1 until :meth:`stop`; ``token`` (if given) is required as a
    bearer token, ``ssl_context`` makes it HTTPS."""

    def __init__(self, token: str | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self.token = token
        self.ssl_context = ssl_context
        self.pods: dict[tuple[str, str], Pod] = {}
        self.version = 1000
        self.floor = self.version  # the oldest version the history can be replayed from
        self.history: list[tuple[int, str, str, Pod | None, Pod]] = []
        self.watches: set[_Watch] = set()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.hidden = False
        self.failing_patches = 0  # answer the next patches with 503
        self.gone_as_status = False  # answer a watch from a compacted version with HTTP 410
        self.waiting = 0  # watch requests held at the gate
        self._gate: asyncio.Event | None = None
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-kube-api", daemon=True
        )
        self._runner: web.AppRunner | None = None

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> FakeKubeAPI:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def _start(self) -> None:
        self._gate = asyncio.Event()
        self._gate.set()
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/{namespace}/pods", self._list_or_watch)
        app.router.add_get("/api/v1/namespaces/{namespace}/pods/{name}", self._get)
        app.router.add_patch("/api/v1/namespaces/{namespace}/pods/{name}", self._patch)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        server = site._server  # the listening socket's port; aiohttp has no public accessor
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._gate is not None:
            self._gate.set()
        for watch in self.watches:
            watch.queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()

    def _call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _run(self, function: Callable[[], Any]) -> Any:
        async def body() -> Any:
            return function()

        return self._call(body())

    # -- the cluster's side ---------------------------------------------------------

    def create_pod(
        self,
        name: str,
        namespace: str = "wool",
        *,
        labels: dict[str, str] | None = None,
        ips: tuple[str, ...] = ("127.0.0.1",),
        ready: bool = True,
    ) -> None:
        """A running pod with IPs ``ips``, Ready or not."""
        pod: Pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
            "status": {
                "phase": "Running",
                "podIP": ips[0] if ips else None,
                "podIPs": [{"ip": ip} for ip in ips],
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            },
        }
        self._run(lambda: self._change("ADDED", namespace, name, pod))

    def update_pod(self, name: str, namespace: str = "wool", **patch: Any) -> None:
        """Merge ``patch`` (``metadata=...``, ``status=...``) into the pod."""
        self._run(
            lambda: self._change(
                "MODIFIED", namespace, name, merge_patch(self.pods[(namespace, name)], patch)
            )
        )

    def set_ready(self, name: str, ready: bool, namespace: str = "wool") -> None:
        """Flip the pod's Ready condition (its readiness probe passing or failing)."""
        status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
        self.update_pod(name, namespace, status=status)

    def terminate(self, name: str, namespace: str = "wool") -> None:
        """Start a graceful deletion: the pod gets a ``deletionTimestamp``."""
        self.update_pod(name, namespace, metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"})

    def delete_pod(self, name: str, namespace: str = "wool") -> None:
        """Remove the pod."""
        self._run(lambda: self._change("DELETED", namespace, name, None))

    def pod(self, name: str, namespace: str = "wool") -> Pod:
        """A copy of the pod as stored."""
        return self._run(lambda: copy.deepcopy(self.pods[(namespace, name)]))

    def bookmark(self) -> int:
        """Send a ``BOOKMARK`` at the current version to the watches that asked for them."""

        def send() -> int:
            for watch in self.watches:
                if watch.bookmarks:
                    watch.queue.put_nowait(
                        {
                            "type": "BOOKMARK",
                            "object": {
                                "kind": "Pod",
                                "apiVersion": "v1",
                                "metadata": {"resourceVersion": str(self.version)},
                            },
                        }
                    )
            return self.version

        return self._run(send)

    def advance(self, steps: int = 1) -> int:
        """Changes elsewhere in the cluster: the version grows, nothing to tell watchers."""
        return self._run(lambda: self._bump(steps))

    def close_watches(self) -> None:
        """End every open watch stream, as a server's timeout or a load balancer does."""
        self._run(lambda: [w.queue.put_nowait(None) for w in self.watches])

    def fail_patches(self, count: int) -> None:
        """Answer the next ``count`` patches with ``503 Service Unavailable``."""
        self._run(lambda: setattr(self, "failing_patches", count))

    def set_token(self, token: str | None) -> None:
        """The bearer token required from now on (``None``: none)."""
        self._run(lambda: setattr(self, "token", token))

    def hide_changes(self, hidden: bool = True) -> None:
        """While hidden, changes are stored and versioned but not sent to open watches
        (as the changes a lagging watcher never received)."""
        self._run(lambda: setattr(self, "hidden", hidden))

    def compact(self) -> None:
        """Forget the history: every open watch gets ``410 Gone`` and ends, and so does
        any later watch from a version before now."""

        def run() -> None:
            self.floor = self.version
            self.history.clear()
            for watch in self.watches:
                watch.queue.put_nowait(_gone())
                watch.queue.put_nowait(None)

        self._run(run)

    def hold_watches(self, held: bool = True) -> None:
        """While held, new watch requests wait before they are answered."""

        def run() -> None:
            assert self._gate is not None
            if held:
                self._gate.clear()
            else:
                self._gate.set()

        self._run(run)

    def held_watches(self) -> int:
        """How many watch requests wait at the gate."""
        return self._run(lambda: self.waiting)

    def open_watches(self) -> int:
        """How many watch streams are open."""
        return self._run(lambda: len(self.watches))

    def counts(self) -> tuple[int, int]:
        """How many (lists, watches) were requested so far."""

        def count() -> tuple[int, int]:
            lists = sum(
                1
                for m, _, q in self.requests
                if m == "GET" and not _flag(q.get("watch")) and "name" not in q
            )
            watches = sum(1 for m, _, q in self.requests if m == "GET" and _flag(q.get("watch")))
            return lists, watches

        return self._run(count)

    def watch_versions(self) -> list[str]:
        """The ``resourceVersion`` of each watch request, in order."""
        return self._run(
            lambda: [
                q.get("resourceVersion", "") for m, _, q in self.requests if _flag(q.get("watch"))
            ]
        )

    # -- internals (run on the server's loop) ---------------------------------------

    def _bump(self, steps: int = 1) -> int:
        self.version += steps
        return self.version

    def _change(self, kind: str, namespace: str, name: str, pod: Pod | None) -> None:
        key = (namespace, name)
        old = self.pods.get(key)
        version = str(self._bump())
        if kind == "DELETED":
            assert old is not None, f"no pod {namespace}/{name}"
            new = copy.deepcopy(old)
            del self.pods[key]
        else:
            assert pod is not None
            new = copy.deepcopy(pod)
            self.pods[key] = new
        new["metadata"]["resourceVersion"] = version
        snapshot = copy.deepcopy(new)
        self.history.append((int(version), kind, namespace, copy.deepcopy(old), snapshot))
        if not self.hidden:
            for watch in self.watches:
                watch.offer(kind, namespace, old, snapshot)

    def _authorized(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _list_or_watch(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["namespace"]
        query = dict(request.query)
        self.requests.append(("GET", request.path, query))
        if not self._authorized(request):
            return _status(401, "Unauthorized")
        selector = query.get("labelSelector", "")
        if _flag(query.get("watch")):
            return await self._watch(request, namespace, selector, query)
        matching = sorted(
            (
                p
                for (ns, _), p in self.pods.items()
                if ns == namespace and selector_matches(selector, p)
            ),
            key=lambda p: p["metadata"]["name"],
        )
        start = int(query.get("continue") or 0)
        limit = int(query.get("limit") or 0) or len(matching) or 1
        page = matching[start : start + limit]
        metadata: dict[str, Any] = {"resourceVersion": str(self.version)}
        if start + limit < len(matching):
            metadata["continue"] = str(start + limit)
        return web.json_response(
            {"kind": "PodList", "apiVersion": "v1", "metadata": metadata, "items": page}
        )

    async def _watch(
        self, request: web.Request, namespace: str, selector: str, query: dict[str, str]
    ) -> web.StreamResponse:
        assert self._gate is not None
        self.waiting += 1
        try:
            await self._gate.wait()
        finally:
            self.waiting -= 1
        since = query.get("resourceVersion", "")
        if self.gone_as_status and since not in ("", "0") and int(since) < self.floor:
            return _status(410, "Expired")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        watch = _Watch(namespace, selector, _flag(query.get("allowWatchBookmarks")))
        if since in ("", "0"):
            for (ns, _), pod in sorted(self.pods.items()):
                watch.offer("ADDED", ns, None, copy.deepcopy(pod))
        elif int(since) < self.floor:
            watch.queue.put_nowait(_gone())
            watch.queue.put_nowait(None)
        else:
            for version, kind, ns, old, new in self.history:
                if version > int(since):
                    watch.offer(kind, ns, old, new)
        self.watches.add(watch)
        timeout = float(query.get("timeoutSeconds") or 1800)
        try:
            async with asyncio.timeout(timeout):
                while (event := await watch.queue.get()) is not None:
                    await response.write(json.dumps(event).encode() + b"\n")
        except TimeoutError:
            pass
        finally:
            self.watches.discard(watch)
        await response.write_eof()
        return response

    async def _get(self, request: web.Request) -> web.Response:
        self.requests.append(("GET", request.path, {"name": request.match_info["name"]}))
        if not self._authorized(request):
            return _status(401, "Unauthorized")
        pod = self.pods.get((request.match_info["namespace"], request.match_info["name"]))
        if pod is None:
            return _status(404, "NotFound")
        return web.json_response(pod)

    async def _patch(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        self.requests.append(("PATCH", request.path, {}))
        if not self._authorized(request):
            return _status(401, "Unauthorized")
        if request.content_type != "application/merge-patch+json":
            return _status(415, f"UnsupportedMediaType {request.content_type}")
        if self.failing_patches > 0:
            self.failing_patches -= 1
            return _status(503, "ServiceUnavailable")
        pod = self.pods.get((namespace, name))
        if pod is None:
            return _status(404, "NotFound")
        patch = await request.json()
        patched = merge_patch(pod, patch)
        self._change("MODIFIED", namespace, name, patched)
        return web.json_response(self.pods[(namespace, name)])


def _flag(value: str | None) -> bool:
    """A boolean query parameter, read as the API server (Go's strconv.ParseBool) does."""
    return value in ("1", "t", "T", "TRUE", "true", "True")


def _gone() -> dict[str, Any]:
    return {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": "too old resource version",
            "reason": "Expired",
            "code": 410,
        },
    }


def _status(code: int, reason: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)
