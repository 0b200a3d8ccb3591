"""``crash-aggregates migrate`` on a local disk: partitions of earlier versions, whose flat sidecar
``_flat.parquet`` DuckDB and polars globs read as data, get the current layout.

The old layout is made from a dataset the job published, as earlier
versions wrote it (helpers.legacy_layout). ``sql`` reads it right all along;
a plain DuckDB glob counts every aggregate twice before the migration and
once after. S3: test_s3.py.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import (
    READER_DAYS,
    doubled,
    duckdb_totals,
    legacy_layout,
    part_file_totals,
    publish_with_job,
    run,
    same_totals,
    sql_totals,
)

from crash_aggregates import migrate
from crash_aggregates.stores.local import LocalPartitionFolder

LEGACY, CURRENT = "_flat.parquet", "_flat.parquet.sidecar"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A dataset the job published (current layout) and its totals, to copy."""
    folder = tmp_path_factory.mktemp("migrate")
    root = publish_with_job(folder)
    return root, part_file_totals(root)


@pytest.fixture
def legacy(published, tmp_path):
    """A copy of the dataset in the layout of earlier versions, and its true totals."""
    root, totals = published
    copy = tmp_path / "aggregates"
    shutil.copytree(root, copy)
    return legacy_layout(copy), totals


def glob_totals(root: Path) -> dict:
    return duckdb_totals(f"{root}/*/*.parquet")


def snapshot(root: Path) -> dict:
    """Every file under root: its bytes and inode (a rename or a rewrite shows)."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_ino)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_old_layout_reads_right_double_counts_in_globs_until_migrated(legacy):
    root, totals = legacy
    before = {folder.name: json.loads((folder / "_SUCCESS").read_text()) for folder in root.iterdir()}
    sidecars = {folder.name: (folder / LEGACY).read_bytes() for folder in root.iterdir()}
    assert same_totals(sql_totals(root), totals)
    assert same_totals(glob_totals(root), doubled(totals))  # the bug of issue 14

    files = snapshot(root)
    result = run("migrate", "--data", root, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        *(f"submission_date={day}: would rename {LEGACY} to {CURRENT}" for day in READER_DAYS),
        "dry run: 3 partition(s) to migrate, 0 already in the current layout; nothing was changed",
    ]
    assert snapshot(root) == files

    result = run("migrate", "--data", root)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        *(f"submission_date={day}: renamed {LEGACY} to {CURRENT}" for day in READER_DAYS),
        "done: 3 partition(s) migrated, 0 already in the current layout",
    ]
    for folder in sorted(root.iterdir()):
        assert sorted(p.name for p in folder.iterdir()) == ["_SUCCESS", CURRENT, "_report.json", "part-00000.parquet"]
        success = json.loads((folder / "_SUCCESS").read_text())
        assert success == {**before[folder.name], "flat": {**before[folder.name]["flat"], "file": CURRENT}}
        assert (folder / CURRENT).read_bytes() == sidecars[folder.name]
        assert files[f"{folder.name}/{LEGACY}"][1] == (folder / CURRENT).stat().st_ino  # renamed, not copied
    assert same_totals(sql_totals(root), totals)
    assert same_totals(glob_totals(root), totals)
    # The flat files are read again (a query on a dimension uses them).
    assert run("sql", "--data", root, "SELECT count(dimensions['channel']) FROM crash_aggregates").exit_code == 0

    files = snapshot(root)
    result = run("migrate", "--data", root)
    assert result.exit_code == 0, result.output
    assert result.stdout == "done: 0 partition(s) migrated, 3 already in the current layout\n"
    assert snapshot(root) == files


def test_a_new_dataset_needs_no_migration(published, tmp_path):
    root = tmp_path / "aggregates"
    shutil.copytree(published[0], root)
    files = snapshot(root)
    result = run("migrate", "--data", root)
    assert result.exit_code == 0 and result.stdout == "done: 0 partition(s) migrated, 3 already in the current layout\n"
    assert snapshot(root) == files


INTERRUPTED = {
    # Stopped after step 1: the new name is there, _SUCCESS still names the old one.
    "after the link": ("link", [f"renamed {LEGACY} to {CURRENT}"]),
    # Stopped after step 2: _SUCCESS names the new file, the old one is still there.
    "after the commit": ("commit", [f"deleted {LEGACY}, which _SUCCESS does not name"]),
}


@pytest.mark.parametrize("stop, said", INTERRUPTED.values(), ids=INTERRUPTED.keys())
def test_an_interrupted_migration_is_finished_by_the_next(legacy, stop, said):
    root, totals = legacy
    folder = root / f"submission_date={READER_DAYS[1]}"
    os.link(folder / LEGACY, folder / CURRENT)
    if stop == "commit":
        success = json.loads((folder / "_SUCCESS").read_text())
        success["flat"]["file"] = CURRENT
        (folder / "_SUCCESS").write_text(json.dumps(success, indent=2, sort_keys=True) + "\n")
    assert same_totals(sql_totals(root), totals)  # either way, the partition reads right
    assert same_totals(glob_totals(root), doubled(totals))

    result = run("migrate", "--data", root)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line for line in lines if line.startswith(folder.name)] == [f"{folder.name}: {s}" for s in said]
    assert lines[-1] == "done: 3 partition(s) migrated, 0 already in the current layout"
    assert sorted(p.name for p in folder.iterdir()) == ["_SUCCESS", CURRENT, "_report.json", "part-00000.parquet"]
    assert same_totals(sql_totals(root), totals)
    assert same_totals(glob_totals(root), totals)


def test_running_the_job_again_writes_the_current_layout(legacy, tmp_path):
    root, totals = legacy
    day = READER_DAYS[0]
    source = tmp_path / "pings"
    result = run("generate", "--output", source, "--min-submission-date", day, "--max-submission-date", day)
    assert result.exit_code == 0
    dates = ("--min-submission-date", day, "--max-submission-date", day)
    result = run("run", "--input", source, "--output", root, *dates, "--workers", 1, "--no-progress")
    assert result.exit_code == 0, result.output
    folder = root / f"submission_date={day}"
    assert sorted(p.name for p in folder.iterdir()) == ["_SUCCESS", CURRENT, "_report.json", "part-00000.parquet"]
    assert json.loads((folder / "_SUCCESS").read_text())["flat"]["file"] == CURRENT
    # The other dates are still in the old layout, and read right beside the new one.
    expected = dict(totals, **{day: part_file_totals(root)[day]})
    assert same_totals(sql_totals(root), expected)
    result = run("migrate", "--data", root)
    assert result.stdout.splitlines()[-1] == "done: 2 partition(s) migrated, 1 already in the current layout"
    assert same_totals(glob_totals(root), expected)


@pytest.mark.parametrize("old_folder", ["removed by the run", "kept aside"])
def test_a_version_published_during_a_migration_is_never_touched(legacy, tmp_path, old_folder):
    """A run swaps in a new version of the folder mid-migration: the steps go to the old folder, or,
    the old folder gone, find nothing to migrate."""
    root, _ = legacy
    day = READER_DAYS[2]
    folder, aside = root / f"submission_date={day}", tmp_path / "aside"
    source = tmp_path / "pings"
    assert (
        run("generate", "--output", source, "--min-submission-date", day, "--max-submission-date", day).exit_code == 0
    )
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if old_folder == "kept aside":
            folder.rename(aside)  # as if the run's clean-up of the old version had not happened yet
        dates = ("--min-submission-date", day, "--max-submission-date", day)
        assert run("run", "--input", source, "--output", root, *dates, "--workers", 1).exit_code == 0
        published = snapshot(folder)
        if old_folder == "kept aside":
            change = migrate.migrate_partition(LocalPartitionFolder(folder.name, fd), dry_run=False)
            assert change.renamed == (LEGACY, CURRENT)
            assert sorted(p.name for p in aside.iterdir()) == [
                "_SUCCESS",
                CURRENT,
                "_report.json",
                "part-00000.parquet",
            ]
        else:
            assert migrate.migrate_partition(LocalPartitionFolder(folder.name, fd), dry_run=False) is None
    finally:
        os.close(fd)
    assert snapshot(folder) == published


def test_a_missing_sidecar_is_reported_and_left(legacy):
    root, totals = legacy
    folder = root / f"submission_date={READER_DAYS[0]}"
    (folder / LEGACY).unlink()
    result = run("migrate", "--data", root)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        f"{folder.name}: _SUCCESS names {LEGACY}, which is missing: queries read the part files (slower)"
    )
    assert result.stdout.splitlines()[-1] == "done: 2 partition(s) migrated, 0 already in the current layout"
    assert same_totals(sql_totals(root), totals)
    assert same_totals(glob_totals(root), totals)


def test_errors_are_one_line(legacy, tmp_path):
    root, _ = legacy
    result = run("migrate", "--data", tmp_path / "nowhere")
    assert result.exit_code == 2 and f"no dataset at {tmp_path / 'nowhere'}: not a folder" in result.output
    result = run("migrate", "--data", "gs://bucket/x")
    assert result.exit_code == 2 and "unsupported location gs://bucket/x" in result.output
    folder = root / f"submission_date={READER_DAYS[1]}"
    (folder / "_SUCCESS").unlink()
    (folder / "_SUCCESS").mkdir()  # cannot be read
    result = run("migrate", "--data", root)
    assert result.exit_code == 1
    *done, error = result.output.splitlines()
    assert done == [f"submission_date={READER_DAYS[0]}: renamed {LEGACY} to {CURRENT}"]  # the ones before it
    assert error == f"Error: cannot migrate {folder / '_SUCCESS'}: Is a directory"


def test_data_from_the_config(legacy, tmp_path):
    root, _ = legacy
    config = tmp_path / "config.toml"
    config.write_text(f'[data]\noutput = "{root}"\n')
    result = run("migrate", "--config", config, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("dry run: 3 partition(s) to migrate")
    result = run("migrate")
    assert result.exit_code == 2 and "no data: pass --data PATH" in result.output
