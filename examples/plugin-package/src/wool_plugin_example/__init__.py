"""An example wool plugin: task outcome counts per routine, and a routine-affinity balancer."""

from __future__ import annotations

from wool_plugin_example._balancer import AffinityLoadBalancer
from wool_plugin_example._outcomes import OutcomeCounter

outcomes = OutcomeCounter()
"""The counter of this process; the ``wool.plugins`` entry point registers this object."""

__all__ = ["AffinityLoadBalancer", "OutcomeCounter", "outcomes"]
