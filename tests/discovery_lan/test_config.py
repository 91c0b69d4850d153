"""LanDiscovery's configuration, plugin registration and pickling: no network needed."""

from __future__ import annotations

import importlib.metadata
import pickle
import re
import tomllib
from pathlib import Path

import cloudpickle
import pytest

import wool
import wool_discovery_lan
from wool_discovery_lan import (
    DEFAULT_SERVICE_TYPE,
    DEFAULT_TTL,
    LanDiscovery,
    LanPublisher,
    LanSubscriber,
)


def test_it_implements_the_discovery_protocols():
    discovery = LanDiscovery()
    assert isinstance(discovery, wool.DiscoveryLike)
    assert isinstance(discovery.publisher, wool.DiscoveryPublisherLike)
    assert isinstance(discovery.subscriber, wool.DiscoverySubscriberLike)
    assert discovery.publisher is discovery.publisher


def test_it_is_declared_as_the_lan_entry_point_of_wool_discovery():
    pyproject = Path(wool_discovery_lan.__file__).parents[2] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not running from the source tree")
    project = tomllib.loads(pyproject.read_text())["project"]
    assert project["entry-points"]["wool.discovery"] == {"lan": "wool_discovery_lan:LanDiscovery"}
    assert project["name"] == "wool-discovery-lan"
    assert [d for d in project["dependencies"] if re.match(r"wool-core\b(?!-)", d)], (
        "wool-discovery-lan must depend on wool-core"
    )


def test_wool_resolves_it_through_the_installed_entry_point():
    try:
        dist = importlib.metadata.distribution("wool-discovery-lan")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("wool-discovery-lan is not installed")
    (entry_point,) = dist.entry_points.select(group="wool.discovery", name="lan")
    assert entry_point.load() is LanDiscovery
    assert wool.LanDiscovery is LanDiscovery


def test_public_names_are_documented():
    for name in wool_discovery_lan.__all__:
        assert hasattr(wool_discovery_lan, name), name
    for cls in (LanDiscovery, LanPublisher, LanSubscriber):
        assert (cls.__doc__ or "").strip()


def test_defaults():
    discovery = LanDiscovery()
    assert discovery.interfaces is None
    assert discovery.service_type == DEFAULT_SERVICE_TYPE == "_wool._tcp.local."
    assert discovery.ttl == DEFAULT_TTL == 60
    assert discovery.subscriber == LanSubscriber()


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (["198.18.0.1"], ("198.18.0.1",)),
        ("lo, 198.18.0.1,,lo", ("lo", "198.18.0.1")),
        (("eth0",), ("eth0",)),
        (None, None),
    ],
)
def test_interfaces_are_addresses_or_names(given, kept):
    assert LanDiscovery(given).interfaces == kept
    assert LanDiscovery(given).subscriber.interfaces == kept


@pytest.mark.parametrize(
    ("given", "error"),
    [
        (["::1"], ValueError),
        (["bad name!"], ValueError),
        ([""], ValueError),
        (",", ValueError),
        ([42], TypeError),
    ],
)
def test_bad_interfaces_are_refused(given, error):
    with pytest.raises(error):
        LanDiscovery(given)


@pytest.mark.parametrize("ttl", [0, 1, -5, 2.5, True, "60"])
def test_ttl_is_whole_seconds_of_at_least_two(ttl):
    with pytest.raises(ValueError, match="ttl"):
        LanDiscovery(ttl=ttl)


@pytest.mark.parametrize("service_type", ["wool", "_wool._tcp", "_wool._xyz.local."])
def test_a_malformed_service_type_is_refused(service_type):
    with pytest.raises(ValueError):
        LanDiscovery(service_type=service_type)


def test_the_subscriber_and_discovery_pickle_to_their_configuration():
    discovery = LanDiscovery(["lo"], service_type="_other._tcp.local.", ttl=5)
    subscriber = discovery.subscriber
    for dumps in (pickle.dumps, cloudpickle.dumps):
        assert pickle.loads(dumps(subscriber)) == subscriber
        copy = pickle.loads(dumps(discovery))
        assert (copy.interfaces, copy.service_type, copy.ttl) == (("lo",), "_other._tcp.local.", 5)
    assert len(pickle.dumps(subscriber)) < 300  # configuration only, no zeroconf state


async def test_publishing_outside_the_context_is_refused():
    publisher = LanDiscovery().publisher
    event = wool.DiscoveryEvent("worker-added", wool.WorkerMetadata("w", "h:1", 1, "v"))
    with pytest.raises(RuntimeError, match="not entered"):
        await publisher.publish(event)
    with pytest.raises(TypeError, match="DiscoveryEvent"):
        await publisher.publish("worker-added")  # type: ignore[arg-type]
