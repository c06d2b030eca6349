"""Every process the deployment files start is a real ``lineage`` command.

The Dockerfile's CMD, each compose service's command and each Kubernetes container's args
are run as ``lineage ARGS... --help``: click parses the whole line first (an unknown
subcommand or option fails) and then prints the help, so exit 0 means the command line the
deployment runs is one the CLI accepts.
"""

from __future__ import annotations

import subprocess

import pytest

import deploy_files

# Commands the deployment runs that other branches of issue 12 add: `lineage derive` (the
# derivation worker, the lead's) and `lineage maintain partitions` (partitioning, another
# helper's). THE LEAD REMOVES THIS SET AT MERGE: then every command below must exist, and
# test_pending_commands_are_still_missing fails until it is emptied.

COMMANDS = deploy_files.commands()
README_COMMANDS = deploy_files.readme_commands()


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([deploy_files.venv_tool("lineage"), *args, "--help"], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("where", sorted(COMMANDS))
def test_command_is_a_real_lineage_command_line(where):
    result = _run(COMMANDS[where])
    assert result.returncode == 0, f"{where}: lineage {' '.join(COMMANDS[where])} --help: {result.stderr}"
    assert "Usage: lineage" in result.stdout


@pytest.mark.parametrize("where", sorted(README_COMMANDS))
def test_readme_deploy_commands_are_real_lineage_command_lines(where):
    result = _run(README_COMMANDS[where])
    assert result.returncode == 0, f"{where}: lineage {' '.join(README_COMMANDS[where])} --help: {result.stderr}"


def test_readme_deploy_shows_the_bootstrap_both_ways():
    bootstraps = [w for w, a in README_COMMANDS.items() if a[:2] == ["tokens", "create"] and "--bootstrap" in a]
    assert {w.split("-")[0] for w in bootstraps} == {"readme/kubectl", "readme/compose"}


def test_a_misspelt_command_or_option_fails_the_check():
    assert _run(["serv", "--host", "0.0.0.0"]).returncode != 0
    assert _run(["serve", "--hots", "0.0.0.0"]).returncode != 0
    assert _run(["db", "upgrade", "--owner"]).returncode != 0


def test_every_role_of_the_deployment_is_present():
    """API, migration, derivation, maintenance: in compose and in Kubernetes alike."""
    assert COMMANDS["airflow/CronJob/lineage-spool-replay/replay"][:2] == ["spool", "replay"]
    for prefix in ("compose/", "k8s/"):
        firsts = {tuple(a[:2]) if a[0] == "db" else (a[0],) for w, a in COMMANDS.items() if w.startswith(prefix)}
        assert firsts == {("serve",), ("db", "upgrade"), ("derive",), ("maintain",)}, prefix
    assert COMMANDS["Dockerfile"][0] == "serve"
