"""The limit on distinct aggregates per date (issue 14), and the compact sums that keep a day's memory down.

The guard's message is checked against distinct values counted here from
the pings as written (not from anything the job made); the sums of
``Sums`` against plain dicts of lists added up in Python.
"""

from __future__ import annotations

import pickle
import random
import re
from pathlib import Path

import pytest
from helpers import read_partition, run, run_process, write_day

from crash_aggregates import flat
from crash_aggregates.aggregate import DayAggregate, Sums, TooManyAggregates, check_limit
from crash_aggregates.config import ConfigError, load_config
from crash_aggregates.memory import default_max_aggregates
from crash_aggregates.storage import aggregates_table, partition_rows

DAY = "2016-03-05"
COUNTRIES = ["US", "DE", "FR", "BR"]
#: The dimensions these pings set, and where (the other default dimensions are absent).
SET_DIMENSIONS = {
    "build_version": ("environment", "build", "version"),
    "build_id": ("environment", "build", "buildId"),
    "channel": ("application", "channel"),
    "application": ("application", "name"),
    "country": ("meta", "geoCountry"),
}


def ping(n: int) -> dict:
    """A valid main ping of its own build id (the misconfigured dimension), one of 4 countries and 2 channels."""
    return {
        "type": "main",
        "creationDate": "2016-03-04T12:00:00Z",
        "meta": {"submissionDate": "20160305", "docType": "main", "geoCountry": COUNTRIES[n % 4]},
        "application": {"name": "Firefox", "channel": ["release", "beta"][n % 2]},
        "environment": {"build": {"version": "45.0", "buildId": f"20160301{n:06d}"}},
        "payload": {"info": {"subsessionLength": 60 * n, "subsessionStartDate": "2016-03-04T00:00:00.0+01:00"}},
    }


def distinct_values(pings: list[dict]) -> dict[str, int]:
    """Distinct values of each dimension the pings set, read from the pings themselves."""
    counts = {}
    for name, path in SET_DIMENSIONS.items():
        values = set()
        for p in pings:
            for key in path:
                p = p[key]
            values.add(p)
        counts[name] = len(values)
    return counts


def run_day(tmp_path: Path, *extra: str, process: bool = False):
    args = ["run", "--input", tmp_path / "in", "--output", tmp_path / "out"]
    args += ["--min-submission-date", DAY, "--max-submission-date", DAY, "--no-progress", *extra]
    return run_process(*args) if process else run(*args)


def expected_message(limit: int, count: int, counts: dict[str, int], read: str = "") -> str:
    most = sorted(counts.items(), key=lambda item: -item[1])[:3]
    listed = ", ".join(f"{name} {n:,}" for name, n in most)
    return (
        f"{DAY}: failed: more than {limit:,} distinct aggregates ({count:,}{read}); the dimensions with the "
        f"most distinct values: {listed} (a dimension with a value per ping or per client should not be one; "
        "--max-aggregates or [limits] max_aggregates raises the limit); the previous partition is left in place"
    )


def test_guard_names_the_dimensions_and_keeps_the_previous_partition(tmp_path):
    pings = [ping(i) for i in range(300)]
    write_day(tmp_path / "in", DAY, pings)
    assert run_day(tmp_path).exit_code == 0
    folder = tmp_path / "out" / f"submission_date={DAY}"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    result = run_day(tmp_path, "--max-aggregates", "50", process=True)
    assert result.returncode == 1
    counts = distinct_values(pings)
    assert counts == {"build_version": 1, "build_id": 300, "channel": 2, "application": 1, "country": 4}
    failure = [line for line in result.stderr.splitlines() if line.startswith(DAY)]
    assert failure == [expected_message(50, 300, counts)]
    assert "Traceback" not in result.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize("workers", ["1", "2"])
def test_guard_counts_what_was_read_when_it_stops(tmp_path, workers):
    """Two files are two tasks: the first alone is over the limit, so the date stops there."""
    first, second = [ping(i) for i in range(200)], [ping(i) for i in range(200, 400)]
    a = write_day(tmp_path / "in", DAY, first, "a.ndjson")
    b = write_day(tmp_path / "in", DAY, second, "b.ndjson")
    share = a.stat().st_size / (a.stat().st_size + b.stat().st_size)
    result = run_day(tmp_path, "--max-aggregates", "150", "--workers", workers)
    assert result.exit_code == 1
    expected = expected_message(150, 200, distinct_values(first), f" after reading {share:.0%} of the input")
    assert expected in result.output
    assert not (tmp_path / "out" / f"submission_date={DAY}").exists()


def test_under_the_limit_the_output_is_unchanged(tmp_path):
    pings = [ping(i) for i in range(120)]
    write_day(tmp_path / "in", DAY, pings)
    assert run_day(tmp_path).exit_code == 0
    folder = tmp_path / "out" / f"submission_date={DAY}"
    unlimited = (folder / "part-00000.parquet").read_bytes()
    rows = read_partition(tmp_path / "out", DAY)
    assert len(rows) == 120

    assert run_day(tmp_path, "--max-aggregates", "120").exit_code == 0  # exactly at the limit
    assert (folder / "part-00000.parquet").read_bytes() == unlimited
    assert run_day(tmp_path, "--max-aggregates", "119").exit_code == 1


@pytest.mark.parametrize(
    "limit, workers, exit_code",
    [
        # 120 pings, 120 distinct aggregates, in two files of 60 (two tasks: two partials merged).
        (120, "1", 0),
        (119, "1", 1),
        (120, "2", 0),
        (119, "2", 1),
        (60, "2", 1),  # each partial is within the limit, the two merged are not
        (59, "2", 1),  # the first partial alone is over it: its worker stops
        (1, "1", 1),
    ],
)
def test_trips_at_limit_plus_one(tmp_path, limit, workers, exit_code):
    pings = [ping(i) for i in range(120)]
    write_day(tmp_path / "in", DAY, pings[:60], "a.ndjson")
    write_day(tmp_path / "in", DAY, pings[60:], "b.ndjson")
    result = run_day(tmp_path, "--max-aggregates", str(limit), "--workers", workers)
    assert result.exit_code == exit_code, result.output
    published = (tmp_path / "out" / f"submission_date={DAY}").exists()
    assert published == (exit_code == 0)
    if exit_code:
        assert f"{DAY}: failed: more than {limit:,} distinct aggregates (" in result.output
    else:
        assert len(read_partition(tmp_path / "out", DAY)) == 120


@pytest.mark.parametrize("count, limit, trips", [(3, 3, False), (3, 2, True), (3, 4, False), (1, 1, False)])
def test_check_limit_table(count, limit, trips):
    day = DayAggregate()
    day.aggregates = {("2016-03-01", (f"v{i}",)): [1.0] for i in range(count)}
    if trips:
        with pytest.raises(TooManyAggregates) as raised:
            check_limit(day, limit, ["build_id"])
        assert (raised.value.count, raised.value.distinct) == (count, [("build_id", count)])
    else:
        check_limit(day, limit, ["build_id"])


def test_limit_from_the_config_file_and_the_command_line_wins(tmp_path):
    write_day(tmp_path / "in", DAY, [ping(i) for i in range(40)])
    config = tmp_path / "config.toml"
    config.write_text("[limits]\nmax_aggregates = 10\n")
    result = run_day(tmp_path, "--config", config)
    assert result.exit_code == 1 and "more than 10 distinct aggregates (40)" in result.output
    assert run_day(tmp_path, "--config", config, "--max-aggregates", "40").exit_code == 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("[limits]\nmax_aggregates = 0\n", "at least 1"),
        ("[limits]\nmax_aggregates = '1000'\n", "whole number"),
        ("[limits]\nmax_aggregates = 2.5\n", "whole number"),
        ("[limits]\nmax_rows = 5\n", "unknown keys ['max_rows']"),
    ],
)
def test_bad_limit_in_config(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)
    write_day(tmp_path / "in", DAY, [ping(1)])
    result = run_day(tmp_path, "--config", path)
    assert result.exit_code == 2 and message in result.output


def test_bad_limit_on_the_command_line(tmp_path):
    write_day(tmp_path / "in", DAY, [ping(1)])
    assert run_day(tmp_path, "--max-aggregates", "0").exit_code == 2


def test_config_shows_the_limit():
    default = run("config").output
    assert f"# max_aggregates = {default_max_aggregates()}" in default
    assert default_max_aggregates(16 << 30) == (16 << 30) // 2 // 1500


def test_check_limit_counts_distinct_values_without_absent_ones():
    day = DayAggregate()
    day.aggregates = {
        ("2016-03-01", ("a", None, "x")): [1.0],
        ("2016-03-02", ("b", None, "x")): [1.0],
        ("2016-03-02", ("c", "z", None)): [1.0],
    }
    check_limit(day, 3, ["os", "arch", "channel"])
    with pytest.raises(TooManyAggregates) as raised:
        check_limit(day, 2, ["os", "arch", "channel"])
    assert raised.value.distinct == [("os", 3), ("arch", 1), ("channel", 1)]
    assert raised.value.count == 3 and raised.value.read is None


# -- Sums: the compact form of the sums ---------------------------------------------------


def random_partials(seed: int, partials: int = 6, width: int = 5) -> list[dict]:
    """Dicts of lists as workers make them: overlapping keys, absent dimensions, odd floats."""
    rng = random.Random(seed)
    values = [None, "a", "b", "é", "", "x" * 30]
    out = []
    for _ in range(partials):
        partial = {}
        for _ in range(rng.randrange(0, 40)):
            key = (f"2016-03-0{rng.randrange(1, 4)}", tuple(rng.choice(values) for _ in range(3)))
            partial[key] = [rng.choice([0.0, 1.0, rng.random() * 1e6, 1e-300, 3.3]) for _ in range(width)]
        out.append(partial)
    return out


def add_up(partials: list[dict]) -> dict:
    """The sums as the engine added them before Sums: float additions in partial order."""
    total: dict = {}
    for partial in partials:
        for key, values in partial.items():
            if key in total:
                total[key] = [a + b for a, b in zip(total[key], values, strict=True)]
            else:
                total[key] = list(values)
    return total


@pytest.mark.parametrize("seed", range(8))
def test_sums_add_up_exactly_like_lists(seed):
    partials = random_partials(seed)
    expected = add_up(partials)
    day = DayAggregate()
    for partial in partials:
        other = DayAggregate()
        other.aggregates = partial
        day.merge(pickle.loads(pickle.dumps(other)))  # as a worker's partial travels
    assert type(day.aggregates) is Sums
    assert list(day.aggregates) == list(expected)  # first-seen order
    assert dict(day.aggregates) == expected  # floats compared exactly
    assert len(day.aggregates) == len(expected)
    for key in expected:
        assert key in day.aggregates
    assert ("2016-03-09", ("zz", None, None)) not in day.aggregates


def test_sums_share_the_strings_of_their_keys():
    # Equal strings made separately, as a worker's signatures make them.
    a, b = "".join(["rel", "ease"]), "".join(["re", "lease"])
    assert a == b and a is not b
    sums = Sums.of({("2016-03-01", (a, "x")): [1.0], ("2016-03-02", (b, "y")): [1.0]})
    columns, _ = sums.columns()
    first, second = columns[1]
    assert first is second


@pytest.mark.parametrize("seed", range(6))
def test_table_from_sums_is_the_table_from_the_dict(seed):
    total = add_up(random_partials(seed))
    names, columns = ["os", "arch", "channel"], [f"s{i}" for i in range(5)]
    from_dict = aggregates_table(total, names, columns)
    rows = partition_rows(Sums.of(total), names, columns, clear=True)
    assert rows.table.equals(from_dict)
    # The rows as SPEC section 6 orders them, worked out here: activity date, then each dimension, absent last.
    order = sorted(total, key=lambda k: (k[0], *((v is None, v or "") for v in k[1])))
    assert from_dict["activity_date"].to_pylist() == [k[0] for k in order]
    assert from_dict["stats"].to_pylist() == [list(zip(columns, total[k], strict=True)) for k in order]
    assert from_dict["dimensions"].to_pylist() == [
        [(n, v) for n, v in zip(names, k[1], strict=True) if v is not None] for k in order
    ]
    # The flat columns known from the building are those the sidecar would find in the maps.
    assert flat.flat_table(rows.table, rows.by_key) == flat.flat_table(rows.table)


def test_sums_columns_clear():
    sums = Sums.of({("d", ("a",)): [1.0, 2.0]})
    columns, values = sums.columns(clear=True)
    assert columns == [("d",), ("a",)] and list(values) == [1.0, 2.0]
    assert len(sums) == 0 and dict(sums) == {}
