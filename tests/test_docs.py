"""The README and docs/ document every command and every option of the CLI."""

from __future__ import annotations

import re

import click
import pytest
from helpers import REPO, run

from crash_aggregates.cli import cli

README = (REPO / "README.md").read_text()
#: The README and the pages under docs/: where a command may be documented.
DOCS = "\n".join([README, *(p.read_text() for p in sorted((REPO / "docs").rglob("*.md")))])
COMMANDS = sorted(cli.commands)


def test_readme_shows_the_two_commands():
    assert "make demo" in README and "make test" in README


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_documented(name):
    assert re.search(rf"crash-aggregates {name}\b", DOCS), f"the docs have no example of `crash-aggregates {name}`"


@pytest.mark.parametrize(
    "name, option",
    [
        (name, opt)
        for name in COMMANDS
        for param in cli.commands[name].params
        if isinstance(param, click.Option)
        for opt in param.opts
        if opt.startswith("--")
    ],
)
def test_option_is_documented(name, option):
    assert option in DOCS, f"`crash-aggregates {name} {option}` is not in the docs"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_explains(name):
    result = run(name, "--help")
    assert result.exit_code == 0
    assert len(cli.commands[name].help or "") > 40, f"{name} needs a real --help text"
