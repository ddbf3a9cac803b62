"""./run: help for newcomers, and `./run api` serving alone but passing subcommands through.
Runs the script against a stand-in virtualenv whose `payreports` prints its arguments."""

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from exports.settings import REPO_ROOT

RUN = REPO_ROOT / "run"


@pytest.fixture
def fake_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    stamp = hashlib.sha256((REPO_ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    (venv / f".installed-{stamp}").touch()  # "already installed": nothing is installed
    cli = venv / "bin" / "payreports"
    cli.write_text('#!/bin/sh\necho "payreports $*"\n')
    cli.chmod(0o755)
    return venv


def _run(venv: Path, *args: str) -> str:
    env = {**os.environ, "PAYREPORTS_VENV": str(venv)}
    return subprocess.run([str(RUN), *args], env=env, capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()


@pytest.mark.parametrize("args, expected", [
    ((), "payreports api serve"),
    (("--port", "9000"), "payreports api serve --port 9000"),
    (("create-key", "--account", "acct_1"), "payreports api create-key --account acct_1"),
    (("revoke-key", "key_1"), "payreports api revoke-key key_1"),
    (("--help",), "payreports api --help"),
])
def test_api_serves_alone_and_passes_subcommands_through(fake_venv, args, expected):
    assert _run(fake_venv, "api", *args) == expected


def test_help_lists_what_a_newcomer_can_do(fake_venv):
    text = _run(fake_venv, "--help")
    for command in ("./run demo", "./run api", "./run ui", "./run report types", "./run users create",
                    "./run api create-key", "./run test"):
        assert command in text, command
    assert _run(fake_venv) == text  # no command = help
