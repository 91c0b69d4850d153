"""Round-robin load balancing for wool: cycle through workers, skip or evict failures."""

from __future__ import annotations

from wool_lb_roundrobin._balancer import RoundRobinLoadBalancer

__all__ = ["RoundRobinLoadBalancer"]
