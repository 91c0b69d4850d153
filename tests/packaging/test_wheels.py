"""The distributions build to wheels that install and work in an empty virtualenv.

One test on purpose: building six wheels and installing them takes about a minute. The
wheels are built into one directory, as ``nox -s dist`` does. The ``wool`` wheel is
installed first by path without its extras; then, into another empty virtualenv, exactly
as the README says: ``pip install --find-links dist 'wool[lan]'``, and the ``etcd`` extra
the same way. Third-party dependencies come from the package index or pip's cache.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# distribution directory -> distribution name
DISTRIBUTIONS = {
    "wool-core": "wool-core",
    "wool-lb-roundrobin": "wool-lb-roundrobin",
    "wool-lb-leastbusy": "wool-lb-leastbusy",
    "wool-discovery-local": "wool-discovery-local",
    "wool-discovery-lan": "wool-discovery-lan",
    "wool-discovery-etcd": "wool-discovery-etcd",
    ".": "wool",
}
README_INSTALL = "pip install --find-links dist 'wool[lan]'"
"""How the README installs wool from a clone, run in the folder `nox -s dist` builds into."""
MUST_NOT_IMPORT = (
    "watchdog",
    "portalocker",
    "zeroconf",
    "wool_discovery_local",
    "wool_discovery_lan",
    "wool_discovery_etcd",
    "wool_lb_roundrobin",
    "wool_lb_leastbusy",
)

CHECK = f"""
import json, sys
import wool
leaked = sorted(m for m in {MUST_NOT_IMPORT!r} if m in sys.modules)
from importlib.metadata import entry_points
print(json.dumps({{
    "leaked": leaked,
    "file": wool.__file__,
    "discovery": sorted(ep.name for ep in entry_points(group="wool.discovery")),
    "loadbalancer": sorted(ep.name for ep in entry_points(group="wool.loadbalancer")),
}}))
print(wool.__version__, wool.LocalDiscovery, wool.RoundRobinLoadBalancer, wool.LanDiscovery)
print(wool.EtcdDiscovery("wheel").subscriber)
"""


def _run(
    *args: str | Path, cwd: Path, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0 or not check, (
        f"{' '.join(map(str, args))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


def _version(directory: Path) -> str:
    with open(directory / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]["version"]


@pytest.mark.timeout(900)
def test_wheels_build_install_and_import(tmp_path: Path) -> None:
    pytest.importorskip("build", reason="needs the 'build' package (nox -s tests installs it)")
    pytest.importorskip("hatchling", reason="needs hatchling (nox -s tests installs it)")

    dist = tmp_path / "dist"
    wheels: dict[str, Path] = {}
    for directory, name in DISTRIBUTIONS.items():
        source = (ROOT / directory).resolve()
        assert (source / "pyproject.toml").is_file(), f"missing distribution {directory}"
        build = ("-m", "build", "--wheel", "--no-isolation", "--outdir", dist, source)
        _run(sys.executable, *build, cwd=tmp_path)
        expected = dist / f"{name.replace('-', '_')}-{_version(source)}-py3-none-any.whl"
        assert expected.is_file(), f"{directory} built {sorted(dist.iterdir())}"
        wheels[name] = expected
    assert len(list(dist.glob("*.whl"))) == len(DISTRIBUTIONS)
    with zipfile.ZipFile(wheels["wool-core"]) as core:
        assert "wool/py.typed" in core.namelist(), "wool-core's wheel lacks py.typed"

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    pip = (python, "-m", "pip", "install", "--disable-pip-version-check")

    # `pip install wool`: without the `lan` extra, asking for it names the install command.
    extras = ("wool-discovery-lan", "wool-discovery-etcd")
    _run(*pip, *(w for n, w in wheels.items() if n not in extras), cwd=tmp_path)
    missing = _run(python, "-c", MISSING_LAN, cwd=tmp_path, timeout=120).stdout
    assert "no discovery plugin named 'lan'" in missing, missing
    assert "pip install 'wool[lan]'" in missing, missing
    assert "wool.LanDiscovery is not available" in missing, missing
    command = subprocess.run(
        [venv / "bin" / "wool", "worker", "--discovery", "lan"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert command.returncode == 2, command
    assert command.stderr.strip().endswith("install it with: pip install 'wool[lan]'"), command
    etcd = _run(python, "-c", "import wool; wool.EtcdDiscovery", cwd=tmp_path, check=False)
    assert "install it with: pip install 'wool[etcd]'" in etcd.stderr, etcd

    # The README's `pip install --find-links dist 'wool[lan]'`, into an empty virtualenv.
    venv = tmp_path / "venv-lan"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    assert README_INSTALL in (ROOT / "README.md").read_text(), "the README's line changed"
    _run(python, "-m", *shlex.split(README_INSTALL), "--disable-pip-version-check", cwd=tmp_path)
    etcd_extra = ("pip", "install", "--find-links", "dist", "wool[etcd]")
    _run(python, "-m", *etcd_extra, "--disable-pip-version-check", cwd=tmp_path)
    result = _run(python, "-c", CHECK, cwd=tmp_path, timeout=120)
    report_line, attributes, subscriber = result.stdout.splitlines()[:3]
    report = json.loads(report_line)
    assert report["leaked"] == [], f"`import wool` imported plugin modules: {report['leaked']}"
    assert Path(report["file"]).is_relative_to(venv), report["file"]
    assert "local" in report["discovery"]
    assert "lan" in report["discovery"]
    assert "etcd" in report["discovery"]
    assert subscriber.startswith("EtcdSubscriber(settings=EtcdSettings(namespace='wheel'"), (
        subscriber
    )
    assert "roundrobin" in report["loadbalancer"]
    assert "leastbusy" in report["loadbalancer"]
    version = _version(ROOT / "wool-core")
    assert attributes.startswith(f"{version} "), attributes
    assert "LocalDiscovery" in attributes and "RoundRobinLoadBalancer" in attributes
    assert "LanDiscovery" in attributes


MISSING_LAN = """
import asyncio, wool
async def main():
    try:
        async with wool.WorkerPool(discovery="lan"):
            pass
    except ValueError as exc:
        print(exc)
    try:
        wool.LanDiscovery
    except ImportError as exc:
        print(exc)
asyncio.run(main())
"""
