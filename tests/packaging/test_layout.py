"""The monorepo's layout, metadata and public API follow the design's rules."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import tomllib
from importlib import import_module
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# distribution directory -> (distribution name, import package)
DISTRIBUTIONS = {
    "wool-core": ("wool-core", "wool"),
    "wool-discovery-local": ("wool-discovery-local", "wool_discovery_local"),
    "wool-discovery-lan": ("wool-discovery-lan", "wool_discovery_lan"),
    "wool-discovery-etcd": ("wool-discovery-etcd", "wool_discovery_etcd"),
    "wool-discovery-kubernetes": ("wool-discovery-kubernetes", "wool_discovery_kubernetes"),
    "wool-lb-roundrobin": ("wool-lb-roundrobin", "wool_lb_roundrobin"),
    "wool-lb-leastbusy": ("wool-lb-leastbusy", "wool_lb_leastbusy"),
    "wool-opentelemetry": ("wool-opentelemetry", "wool_opentelemetry"),
}
EXTRAS_ONLY = {
    "wool-discovery-lan",
    "wool-discovery-etcd",
    "wool-discovery-kubernetes",
    "wool-opentelemetry",
}
"""Distributions the root `wool` pulls in through an extra, not by default."""
PLUGINS = {
    "wool-discovery-local": ("wool.discovery", "local"),
    "wool-discovery-lan": ("wool.discovery", "lan"),
    "wool-discovery-etcd": ("wool.discovery", "etcd"),
    "wool-discovery-kubernetes": ("wool.discovery", "kubernetes"),
    "wool-lb-roundrobin": ("wool.loadbalancer", "roundrobin"),
    "wool-lb-leastbusy": ("wool.loadbalancer", "leastbusy"),
    "wool-opentelemetry": ("wool.plugins", "opentelemetry"),
}
# third-party packages that belong to exactly one distribution
EXCLUSIVE = {
    "zeroconf": "wool-discovery-lan",
    "kubernetes-asyncio": "wool-discovery-kubernetes",
    "watchdog": "wool-discovery-local",
    "portalocker": "wool-discovery-local",
    "opentelemetry-api": "wool-opentelemetry",
}
# public names provided by distributions that the default install does not include
OPTIONAL = {
    "LanDiscovery": "wool-discovery-lan",
    "EtcdDiscovery": "wool-discovery-etcd",
    "KubernetesDiscovery": "wool-discovery-kubernetes",
}


def _pyproject(directory: Path) -> dict[str, Any]:
    with open(directory / "pyproject.toml", "rb") as file:
        return tomllib.load(file)


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


ROOT_PROJECT = _pyproject(ROOT)["project"]
VERSION = ROOT_PROJECT["version"]


@pytest.mark.parametrize("directory", sorted(DISTRIBUTIONS))
def test_distribution_layout(directory: str) -> None:
    name, package = DISTRIBUTIONS[directory]
    path = ROOT / directory
    for required in ("pyproject.toml", "README.md", f"src/{package}/__init__.py"):
        assert (path / required).is_file(), f"{directory}/{required} is missing"
    project = _pyproject(path)["project"]
    assert project["name"] == name
    assert project["version"] == VERSION, f"{name} {project['version']} != wool {VERSION}"
    assert project["requires-python"] == ">=3.11"
    dependencies = project.get("dependencies", [])
    if name != "wool-core":
        assert f"wool-core=={VERSION}" in dependencies, f"{name} must pin wool-core=={VERSION}"
    names = {_requirement_name(d) for d in dependencies}
    for dependency, owner in EXCLUSIVE.items():
        if owner != name:
            assert dependency not in names, f"{dependency} belongs to {owner}, not {name}"


@pytest.mark.parametrize("directory", sorted(PLUGINS))
def test_plugin_entry_point(directory: str) -> None:
    group, name = PLUGINS[directory]
    entry_points = _pyproject(ROOT / directory)["project"].get("entry-points", {})
    assert name in entry_points.get(group, {}), f"{directory} must register {group}: {name}"


def test_root_distribution_has_no_code() -> None:
    pyproject = _pyproject(ROOT)
    assert ROOT_PROJECT["name"] == "wool"
    assert not (ROOT / "src").exists() and not (ROOT / "wool").exists()
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel.get("bypass-selection") is True and not wheel.get("packages")
    pins = {f"{name}=={VERSION}" for name, _ in DISTRIBUTIONS.values() if name not in EXTRAS_ONLY}
    assert pins <= set(ROOT_PROJECT["dependencies"])
    extras = ROOT_PROJECT["optional-dependencies"]
    assert f"wool-discovery-lan=={VERSION}" in extras["lan"]
    assert set(extras["lan"]) <= set(extras["all"])
    assert f"wool-discovery-etcd=={VERSION}" in extras["etcd"]
    assert set(extras["etcd"]) <= set(extras["all"])
    assert f"wool-discovery-kubernetes=={VERSION}" in extras["kubernetes"]
    assert set(extras["kubernetes"]) <= set(extras["all"])
    assert f"wool-opentelemetry=={VERSION}" in extras["opentelemetry"]
    assert set(extras["opentelemetry"]) <= set(extras["all"])


def test_import_wool_imports_no_plugin() -> None:
    modules = (
        "watchdog",
        "portalocker",
        "zeroconf",
        "kubernetes_asyncio",
        "wool_discovery_local",
        "wool_discovery_lan",
        "wool_discovery_etcd",
        "wool_discovery_kubernetes",
        "wool_lb_roundrobin",
        "wool_lb_leastbusy",
        "wool_opentelemetry",
        "opentelemetry",
    )
    code = f"import sys, wool; print(sorted(m for m in {modules!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def _installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


def _public_objects(module_name: str) -> list[tuple[str, Any]]:
    module = import_module(module_name)
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    objects = []
    for name in module.__all__:
        if name in OPTIONAL and not _installed(OPTIONAL[name]):
            continue
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name!r}"
        objects.append((name, getattr(module, name)))
    return objects


@pytest.mark.parametrize("directory", sorted(DISTRIBUTIONS))
def test_public_names_exist_and_are_documented(directory: str) -> None:
    name, package = DISTRIBUTIONS[directory]
    if not _installed(name):
        pytest.skip(f"{name} is not installed")
    module = import_module(package)
    assert (module.__doc__ or "").strip(), f"{package} has no module docstring"
    undocumented = [
        public
        for public, obj in _public_objects(package)
        if (inspect.isclass(obj) or inspect.isroutine(obj)) and not (obj.__doc__ or "").strip()
    ]
    assert undocumented == [], f"{package}: public names without a docstring: {undocumented}"
