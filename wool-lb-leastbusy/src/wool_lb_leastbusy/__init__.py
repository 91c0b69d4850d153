"""Load-aware balancing for wool: each call goes to the less busy of two workers."""

from __future__ import annotations

from wool_lb_leastbusy._balancer import LeastBusyLoadBalancer, load

__all__ = ["LeastBusyLoadBalancer", "load"]
