"""RoundRobinLoadBalancer passes wool's load-balancer conformance kit (wool.testing)."""

from __future__ import annotations

import collections

import grpc
import pytest

import wool
import wool.testing
from tests.core import routines as r
from wool_lb_roundrobin import RoundRobinLoadBalancer


class TestRoundRobinConformance(wool.testing.LoadBalancerConformance):
    @pytest.fixture
    def loadbalancer_factory(self):
        return RoundRobinLoadBalancer


SESSIONS = 300


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    ],
)
async def test_a_transient_status_is_transient_on_every_session(code: grpc.StatusCode):
    """What the kit's transient checks rely on, on many fresh sessions.

    A server that answers a session with a transient status at once (as a gRPC server
    over its cap of pending calls does) can make grpc.aio fail the caller's first write;
    grpc then replaces the server's status with INTERNAL "Internal error from Core". That
    is not a worker fault, and must not get the worker evicted.
    """
    seen: collections.Counter[str] = collections.Counter()
    async with wool.testing.RogueWorker(code) as metadata:
        proxy = wool.CallerProxy(
            wool.testing.StaticSubscriber([metadata]), RoundRobinLoadBalancer()
        )
        for _ in range(SESSIONS):
            task = wool.Task(routine="add", callable=r.add, args=(1, 2), kwargs={}, proxy=proxy)
            connection = wool.CallerConnection(metadata)
            try:
                await connection.dispatch(task)
            except wool.TransientDispatchError:
                seen["transient"] += 1
            except wool.DispatchError as exc:
                seen[f"{type(exc).__name__}: {exc}"] += 1
            finally:
                await connection.close()
    assert seen == {"transient": SESSIONS}
