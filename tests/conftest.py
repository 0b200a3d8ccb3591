"""Fixtures shared by the test modules (plain helpers live in helpers.py)."""

import os
import shutil
from pathlib import Path

import pytest
from helpers import SHARED
from sqldata import add_corrupt_partition, build, strip_sidecars


@pytest.fixture(scope="session", autouse=True)
def state_home(tmp_path_factory) -> Path:
    """The default place of the state file (``state.default_path``) is a scratch folder for the whole run.

    A test that starts `serve` or `check` without --state (and the processes
    it starts) then never reads or writes the real user's state file.
    """
    home = tmp_path_factory.mktemp("xdg-data-home")
    os.environ["XDG_DATA_HOME"] = str(home)
    return home


@pytest.fixture
def shared() -> Path:
    assert SHARED.is_dir(), f"shared/ not found at {SHARED} (set CRASH_AGGREGATES_SHARED)"
    return SHARED


#: The two layouts every query must answer the same on: partitions with flat
#: sidecars (the fast path), and without (as published by earlier versions).
LAYOUTS = ("sidecars", "no sidecars")


@pytest.fixture(scope="session", params=LAYOUTS)
def dataset(request, tmp_path_factory):
    """The fixed dataset of sqldata.py in each layout, built once per session (read-only: copy it to change it)."""
    root = build(tmp_path_factory.mktemp("aggregates") / "data")
    return strip_sidecars(root) if request.param == "no sidecars" else root


@pytest.fixture
def corrupt_dataset(dataset, tmp_path):
    """The dataset plus a published partition 2016-03-17 whose data file is corrupt."""
    root = tmp_path / "data"
    shutil.copytree(dataset, root)
    add_corrupt_partition(root)
    return root


def demo_commands(root: Path) -> list[list[str]]:
    """The `generate` and `run` commands of `make demo`, read from the Makefile, writing under ``root``."""
    import shlex

    from helpers import REPO

    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    commands = []
    for line in recipe.splitlines():
        words = shlex.split(line.strip())
        if words and words[0].endswith("/crash-aggregates") and words[1] in ("generate", "run"):
            commands.append([w.replace("$(DEMO)", str(root)) for w in words[1:]])
    assert [c[0] for c in commands] == ["generate", "run"], f"make demo changed: {recipe}"
    return commands


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """The demo week exactly as `make demo` publishes it (what `make dashboard` serves)."""
    from helpers import run

    root = tmp_path_factory.mktemp("demo")
    for command in demo_commands(root):
        result = run(*command, *(["--no-progress"] if command[0] == "run" else []))
        assert result.exit_code == 0, result.output
    return root / "aggregates"
