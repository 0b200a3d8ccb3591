"""Fixtures shared by the test modules (plain helpers live in helpers.py)."""

import os
import shutil
import uuid
from pathlib import Path

import pytest
from helpers import SHARED
from hypothesis import HealthCheck, settings
from s3server import S3, start_moto, use_keys
from sqldata import add_corrupt_partition, build, strip_sidecars

# A pytest plugin (`make test-sanitized`), not a module to import for doctests.
collect_ignore = ["sanitized.py"]

# Property tests (test_properties.py): the same examples on every run (derandomize).
# ``ci`` (make test): each property's own count (2,000 for the cheap ones, fewer for the
# whole-day ones); ``full`` (make test-properties, in CI): at least 2,000 for every
# property; ``deep``: at least 20,000. A profile's max_examples is that floor.
settings.register_profile(
    "ci",
    max_examples=1,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("full", settings.get_profile("ci"), max_examples=2000)
settings.register_profile("deep", settings.get_profile("ci"), max_examples=20000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """A real S3 API on loopback (s3server.py), one for the whole session."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    server = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def s3(moto_server, monkeypatch):
    """A fresh bucket; the environment points every AWS client at the loopback server only."""
    from crash_aggregates.stores import s3_client

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(s3_client.ENDPOINT_ENV, "unset")
    monkeypatch.delenv(s3_client.ENDPOINT_ENV)  # restored to unset after the test, whatever a run sets
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    use_keys(monkeypatch, moto_server.writer)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    s3_client.s3_filesystem().mkdir(bucket)
    return S3(moto_server.endpoint, bucket, moto_server)
