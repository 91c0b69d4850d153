"""wool.testing: the conformance kit for discovery and load-balancer plugins.

Import it explicitly in a plugin's tests (``import wool`` does not import it)::

    import pytest
    import wool.testing

    class TestMyDiscovery(wool.testing.DiscoveryConformance):
        @pytest.fixture
        def discovery_factory(self, tmp_path):
            return lambda: MyDiscovery(tmp_path / "workers")

    class TestMyBalancer(wool.testing.LoadBalancerConformance):
        @pytest.fixture
        def loadbalancer_factory(self):
            return MyBalancer

Each inherited ``test_*`` method checks one rule of the contract and fails with a
:class:`ConformanceError` saying which rule and what happened. The checks run their own
event loops, so they need pytest but no pytest plugin. The building blocks they use are
public too: a pool of real workers in this process that routines dispatch to
(:class:`InProcessPool`), one such worker (:class:`InProcessWorker`), gRPC servers that
fail every call with a chosen status (:class:`RogueWorker`), workers that refuse tasks
(:func:`refusing`), a fixed subscriber (:class:`StaticSubscriber`), metadata with a live
pid (:func:`worker_metadata`, :func:`live_process`) and task-event recording
(:class:`EventRecorder`, :func:`drain_events`).
"""

from __future__ import annotations

from wool.testing._balancer import LoadBalancerConformance
from wool.testing._balancing import AdmissionRefuser, StaticSubscriber, refusing
from wool.testing._common import ConformanceError
from wool.testing._discovery import DiscoveryConformance
from wool.testing._pool import InProcessPool
from wool.testing._recording import EventRecorder, drain_events
from wool.testing._workers import InProcessWorker, RogueWorker, live_process, worker_metadata

__all__ = [
    "AdmissionRefuser",
    "ConformanceError",
    "DiscoveryConformance",
    "EventRecorder",
    "InProcessPool",
    "InProcessWorker",
    "LoadBalancerConformance",
    "RogueWorker",
    "StaticSubscriber",
    "drain_events",
    "live_process",
    "refusing",
    "worker_metadata",
]
