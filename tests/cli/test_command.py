"""`wool --version`, the help texts, and errors that name the fix."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest

from tests.cli.helpers import ROOT, run
from wool import _plugins

GROUPS = ("wool.discovery", "wool.loadbalancer", "wool.plugins")


async def test_version_names_the_distributions_and_every_plugin():
    result = await run("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for dist in ("wool", "wool-core", "wool-discovery-local", "wool-lb-roundrobin"):
        assert f"{dist} {version(dist)}" in lines
    if importlib.util.find_spec("wool_discovery_lan") is not None:
        assert f"wool-discovery-lan {version('wool-discovery-lan')}" in lines
    plugin_lines = [line.split() for line in lines if line.startswith("  wool.")]
    for group in GROUPS:
        for ep in entry_points(group=group):
            assert ep.dist is not None
            expected = [group, ep.name, ep.value, "from", ep.dist.name, ep.dist.version]
            assert expected in plugin_lines, f"{ep} missing from:\n{result.stdout}"
    names = {(words[0], words[1]) for words in plugin_lines}
    assert {("wool.discovery", "local"), ("wool.loadbalancer", "roundrobin")} <= names


async def test_the_console_script_is_installed_next_to_the_interpreter():
    script = Path(sys.executable).parent / "wool"
    assert script.exists(), "reinstall wool-core (pip install -e wool-core) for the script"
    process = await asyncio.create_subprocess_exec(
        script, "--version", stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    assert process.returncode == 0
    assert f"wool-core {version('wool-core')}" in out.decode().splitlines()


async def test_help_texts_show_the_commands_and_examples():
    top = await run("--help")
    assert top.returncode == 0
    assert "wool worker --size 4 --namespace demo" in top.stdout
    assert "workers" in top.stdout and "--version" in top.stdout
    worker = await run("worker", "--help")
    assert worker.returncode == 0
    for text in ("--size N", "--tag TAG", "--discovery NAME", "--grace SECONDS", "examples:"):
        assert text in worker.stdout
    assert 'wool.WorkerPool(discovery=wool.LocalDiscovery("demo"))' in worker.stdout
    workers = await run("workers", "--help")
    assert workers.returncode == 0
    for text in ("--json", "--watch", "--wait SECONDS", "examples:"):
        assert text in workers.stdout


async def test_no_command_shows_the_help_and_exits_2():
    result = await run()
    assert result.returncode == 2
    assert "wool worker" in result.stdout


@pytest.mark.parametrize("command", ["worker", "workers"])
async def test_an_unknown_discovery_names_the_installed_ones(command):
    result = await run(command, "--discovery", "nope")
    assert result.returncode == 2
    installed = ", ".join(repr(n) for n in _plugins.installed(_plugins.DISCOVERY_GROUP))
    assert result.stderr == (
        f"wool {command}: error: no discovery plugin named 'nope' (installed: {installed}); "
        "pass one of the installed names to --discovery, or install the package that "
        "provides 'nope'"
    )


# Without wool-discovery-lan, `--discovery lan` names `pip install 'wool[lan]'`: checked in
# tests/packaging/test_wheels.py, in a virtualenv where it really is missing.


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ca", "ca.pem"], "TLS needs all of --ca, --cert and --key; missing --cert and --key"),
        (["--cert", "c.pem", "--key", "k.pem"], "missing --ca"),
        (["--no-mutual"], "--no-mutual needs TLS files: add --ca, --cert and --key"),
        (
            ["--ca", "/nonexistent/ca.pem", "--cert", "/nonexistent/c", "--key", "/nonexistent/k"],
            "cannot read --ca '/nonexistent/ca.pem': No such file or directory",
        ),
        (["--size", "0"], "--size must be at least 1, got 0"),
        (["--port", "70000"], "--port must be between 0 and 65535"),
        (["--port", "65535", "--size", "2"], "choose a --port below 65535, or --port 0"),
        (["--host", "0.0.0.0"], "add --advertise ADDRESS"),
        (["--port", "5000"], "--port needs --host: without it the workers listen on unix"),
        (["--discovery", "lan"], "--discovery lan publishes the workers for callers elsewhere"),
        (["--advertise", "h.test"], "--advertise needs --host"),
        (
            ["--host", "198.18.0.2"],
            "refusing to listen on '198.18.0.2' without TLS credentials: anyone who can reach",
        ),
        (["--host", "0.0.0.0", "--advertise", "198.18.0.2"], "(wool worker --insecure)"),
        (["--grace", "-1"], "--grace must be 0 or more seconds"),
        (["--concurrency", "0"], "--concurrency must be at least 1, got 0"),
        (["--namespace", "a/b"], "use only ASCII letters"),
        (["--discovery", "local", "--namespace", ""], "namespace must not be empty"),
        (["--size", "two"], "argument --size: invalid int value: 'two'"),
        (["--bogus"], "unrecognized arguments: --bogus (see 'wool worker --help')"),
    ],
)
async def test_a_bad_command_line_exits_2_with_one_line_naming_the_fix(args, message):
    result = await run("worker", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("wool worker: error: ")
    assert message in result.stderr
    assert "\n" not in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


async def test_a_file_that_is_not_pem_is_named(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    result = await run("worker", "--ca", str(junk), "--cert", str(junk), "--key", str(junk))
    assert result.returncode == 2
    assert result.stderr.startswith(f"wool worker: error: --ca {str(junk)!r} is not")
