"""The synthetic ping generator: layout, determinism, schema validity, sizes, and bad share.

The bad share is checked independently of the generator: every line goes
through the job's own rules (``PingRules``), whose ignore reasons must add up
to what the generator's summary claims to have written.
"""

from __future__ import annotations

import gzip
import itertools
import json
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner
from helpers import SHARED

from crash_aggregates.cli import cli
from crash_aggregates.config import default_config
from crash_aggregates.pings import RULE_REASONS, PingRules
from crash_aggregates.synth import BAD_KINDS, CHANNELS, builds, generate, regression_build_id

DAYS = [date(2016, 3, 9), date(2016, 3, 10)]
DIMENSIONS = [d.name for d in default_config().dimensions]
STATS = default_config().stat_columns()


def read_lines(path: Path) -> list[bytes]:
    """Every line of one input file, blank ones included."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def day_lines(root: Path, day: date) -> list[bytes]:
    files = sorted((root / f"submission_date={day.isoformat()}").iterdir())
    return [line for f in files for line in read_lines(f)]


def evaluated(root: Path, day: date):
    """(line, outcome) for every non-blank line of a day, under the job's rules."""
    rules = PingRules(default_config(), day)
    return [(line, rules.evaluate(line)) for line in day_lines(root, day) if line]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    return root, generate(str(root), DAYS, 3000, seed=7)


@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    root = tmp_path_factory.mktemp("realistic")
    return root, generate(str(root), DAYS[:1], 40, seed=7, profile="realistic")


@pytest.fixture(scope="module")
def validators():
    import jsonschema

    shared = SHARED
    assert (shared / "fixtures").is_dir(), f"shared/fixtures not found at {shared} (set CRASH_AGGREGATES_SHARED)"
    return {
        kind: jsonschema.Draft4Validator(json.loads((shared / "fixtures" / f"{kind}.4.schema.json").read_text()))
        for kind in ("main", "crash")
    }


def schema_errors(validators, line: bytes) -> list[str]:
    doc = json.loads(line)
    errors = list(validators[doc["type"]].iter_errors(doc))
    if errors:  # the schemas do not describe the ingestion `meta` block: retry without it
        doc.pop("meta", None)
        errors = list(validators[doc["type"]].iter_errors(doc))
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors]


# -- layout and determinism ----------------------------------------------------------


def test_layout(small):
    root, summary = small
    assert sorted(p.name for p in root.iterdir()) == [f"submission_date={d.isoformat()}" for d in DAYS]
    on_disk = 0
    for day in DAYS:
        files = sorted((root / f"submission_date={day.isoformat()}").iterdir())
        assert [f.name for f in files] == [f"pings-{i:05d}.ndjson.gz" for i in range(len(files))]
        assert len(files) >= 2  # so that the job can split a day between workers
        assert all(f.read_bytes()[:2] == b"\x1f\x8b" for f in files)
        on_disk += sum(f.stat().st_size for f in files)
    assert summary.files == 2 * len(files)
    assert summary.bytes == on_disk


def test_summary_counts_lines(small):
    root, summary = small
    total_blank = 0
    for day in DAYS:
        lines = day_lines(root, day)
        by_day = summary.by_day[day]
        blank = sum(1 for line in lines if not line)
        assert len(lines) - blank == by_day.pings == 3000
        assert blank == by_day.blank_lines
        assert by_day.main_pings + by_day.crash_pings == by_day.pings
        assert sum(len(line) + 1 for line in lines) == by_day.uncompressed_bytes
        total_blank += blank
    assert summary.pings == 6000 and summary.blank_lines == total_blank
    assert summary.bad == {r: sum(s.bad[r] for s in summary.by_day.values()) for r in RULE_REASONS}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*.gz"))}

    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        generate(str(tmp_path / name), DAYS, 300, seed=seed)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    a, c = files(tmp_path / "a"), files(tmp_path / "c")
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


def test_realistic_is_deterministic_too(tmp_path):
    first = generate(str(tmp_path / "a"), DAYS[:1], 12, seed=3, profile="realistic")
    second = generate(str(tmp_path / "b"), DAYS[:1], 12, seed=3, profile="realistic")
    assert first.uncompressed_bytes == second.uncompressed_bytes
    for path in (tmp_path / "a").rglob("*.gz"):
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


def test_compression_and_split_do_not_change_the_pings(tmp_path):
    expected = None
    for compression, files_per_day, ext in (
        ("gzip", None, ".ndjson.gz"),
        ("none", 3, ".ndjson"),
        ("zstd", 5, ".ndjson.zst"),
    ):
        root = tmp_path / compression
        summary = generate(str(root), DAYS[:1], 400, seed=5, compression=compression, files_per_day=files_per_day)
        names = sorted(p.name for p in (root / "submission_date=2016-03-09").iterdir())
        assert names == [f"pings-{i:05d}{ext}" for i in range(files_per_day or 2)]
        assert summary.files == len(names)
        lines = day_lines(root, DAYS[0])
        expected = expected or lines
        assert lines == expected


def test_rewriting_a_day_replaces_its_files(tmp_path):
    generate(str(tmp_path), DAYS[:1], 100, files_per_day=4)
    generate(str(tmp_path), DAYS[:1], 100, files_per_day=2, compression="zstd")
    folder = tmp_path / "submission_date=2016-03-09"
    assert sorted(p.name for p in folder.iterdir()) == ["pings-00000.ndjson.zst", "pings-00001.ndjson.zst"]


def test_bad_arguments():
    for kwargs in ({"profile": "huge"}, {"compression": "lz4"}, {"files_per_day": 0}):
        with pytest.raises(ValueError):
            generate("/nonexistent", DAYS, 10, **kwargs)
    with pytest.raises(ValueError):
        generate("/nonexistent", [], 10)


# -- schema and size ----------------------------------------------------------------


def test_good_small_pings_validate(small, validators):
    root, _ = small
    rules, kinds = PingRules(default_config(), DAYS[0]), Counter()
    for line in read_lines(root / "submission_date=2016-03-09" / "pings-00000.ndjson.gz"):  # ~1 ms a ping
        if line and rules.evaluate(line).reason is None:
            assert schema_errors(validators, line) == []
            kinds[json.loads(line)["type"]] += 1
    assert kinds["main"] > 1000 and kinds["crash"] > 80


def test_good_realistic_pings_validate(realistic, validators):
    root, _ = realistic
    checked = Counter()
    for line, outcome in evaluated(root, DAYS[0]):
        kind = json.loads(line)["type"] if outcome.reason is None else None
        if kind and checked[kind] < 6:  # ~0.2 s per realistic main ping: a sample is enough
            assert schema_errors(validators, line) == []
            checked[kind] += 1
    assert checked["main"] == 6 and checked["crash"] >= 1


def good_sizes(root: Path, day: date) -> dict[str, list[int]]:
    sizes = defaultdict(list)
    for line, outcome in evaluated(root, day):
        if outcome.reason is None:
            sizes["crash" if outcome.is_crash else "main"].append(len(line))
    return sizes


def test_small_pings_weigh_1_to_2_kb(small):
    sizes = good_sizes(small[0], DAYS[0])
    for kind in ("main", "crash"):
        assert 1000 <= min(sizes[kind]) and max(sizes[kind]) <= 2048, kind


def test_realistic_main_pings_weigh_100_to_200_kb(realistic):
    sizes = good_sizes(realistic[0], DAYS[0])["main"]
    assert len(sizes) > 20
    assert 100 * 1024 <= min(sizes) and max(sizes) <= 200 * 1000


# -- the bad share, checked by the job's own rules -------------------------------------


def test_ignore_reasons_match_the_summary(small):
    root, summary = small
    for day in DAYS:
        outcomes = [outcome for _, outcome in evaluated(root, day)]
        reasons = Counter(o.reason for o in outcomes if o.reason)
        by_day = summary.by_day[day]
        assert reasons == Counter({r: n for r, n in by_day.bad.items() if n})
        assert set(reasons) == set(RULE_REASONS)  # every kind, every day
        assert 0.015 <= sum(reasons.values()) / len(outcomes) <= 0.03
        assert by_day.crash_pings == sum(o.is_crash for o in outcomes)
        assert by_day.crash_ignored == sum(o.is_crash and o.reason is not None for o in outcomes)
        assert by_day.main_ignored == sum(not o.is_crash and o.reason is not None for o in outcomes)


def test_malformed_lines_come_in_every_variant(small):
    root, _ = small
    malformed = [line for day in DAYS for line, o in evaluated(root, day) if o.reason == "malformed_json"]
    assert len(malformed) >= len(BAD_KINDS["malformed_json"])
    assert any(line.startswith(b"[") for line in malformed)
    assert any(b"NaN" in line for line in malformed)
    assert any(not line.endswith(b"}") and not line.endswith(b"]") for line in malformed)  # truncated
    not_utf8 = 0
    for line in malformed:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            not_utf8 += 1
    assert not_utf8 >= 2


# -- shape ------------------------------------------------------------------------------


def processed(root: Path, day: date):
    """(activity date, dimensions, stats) of every processed ping of a day; absent dimensions are None."""
    for _, outcome in evaluated(root, day):
        if outcome.reason is None:
            dims = dict(zip(DIMENSIONS, outcome.key[1], strict=True))
            yield outcome.key[0], dims, dict(zip(STATS, outcome.values, strict=True))


def test_shape_of_the_data(small):
    root, summary = small
    rows = [row for day in DAYS for row in processed(root, day)]
    pings = Counter(dims["channel"] for _, dims, _ in rows)
    assert set(pings) == set(CHANNELS)
    assert 0.6 < pings["release"] / len(rows) < 0.8
    crashes = sum(stats["main_crashes"] for _, _, stats in rows)
    assert 0.06 < crashes / len(rows) < 0.14
    assert Counter(dims["os_name"] for _, dims, _ in rows).most_common(1)[0][0] == "Windows_NT"
    branches = Counter(dims.get("experiment_branch") for _, dims, _ in rows)
    assert branches["control"] > 0 and branches["treatment"] > 0
    assert 0.05 < (branches["control"] + branches["treatment"]) / len(rows) < 0.15
    # Named after the beta's major: a day after 46.0b1 shipped, many clients still run 45.0 betas.
    experiments = {dims["experiment_id"] for _, dims, _ in rows if dims["experiment_id"]}
    assert experiments == {f"e10s-beta{n}-noapz@experiments.mozilla.org" for n in (45, 46)}
    assert {dims["e10s_enabled"] for _, dims, _ in rows} == {"True", "False"}
    # Late pings: the job clamps activity dates to seven days back.
    lateness = Counter((DAYS[0] - date.fromisoformat(activity)).days for activity, _, _ in processed(root, DAYS[0]))
    assert lateness[7] > 0 and min(lateness) >= 0 and max(lateness) == 7
    assert lateness[0] > len(rows) / 4
    usage = [stats["usage_hours"] for _, dims, stats in rows if stats["ping_count"]]
    assert max(usage) == 25.0 and 0.5 < sum(usage) / len(usage) < 4
    assert sum(stats["content_crashes"] for _, _, stats in rows) > 0


def test_one_nightly_build_has_a_crash_regression(small):
    root, summary = small
    assert summary.regression_build_id == regression_build_id(DAYS) == "20160307031010"
    hours, crashes = Counter(), Counter()
    for day in DAYS:
        for _, dims, stats in processed(root, day):
            if dims["channel"] == "nightly":
                bad = dims["build_id"] == summary.regression_build_id
                hours[bad] += stats["usage_hours"]
                crashes[bad] += stats["main_crashes"]
    rate = {bad: crashes[bad] / hours[bad] for bad in (True, False)}
    assert rate[True] > 3 * rate[False]


def test_builds_advance_day_by_day():
    start = date(2016, 3, 1)
    for channel in CHANNELS:
        newest = [builds(channel, start + timedelta(days=i))[0][0] for i in range(60)]
        ids = [b.build_id for b in newest]
        assert all(len(i) == 14 and i.isdigit() for i in ids)
        assert ids == sorted(ids)
        changes = sum(a != b for a, b in itertools.pairwise(ids))
        expected = {"nightly": 59, "beta": (8, 9), "release": (4, 5), "esr": (1, 2)}[channel]
        assert changes == expected if channel == "nightly" else changes in expected, channel
    assert builds("release", date(2016, 3, 9))[0][0].version == "45.0"
    assert builds("nightly", date(2016, 3, 9))[0][0].version == "47.0a1"


# -- command line -------------------------------------------------------------------


def test_cli_generate(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "--output",
            str(tmp_path),
            "--min-submission-date",
            "20160309",
            "--max-submission-date",
            "2016-03-10",
            "--pings-per-day",
            "50",
            "--compression",
            "none",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "generated 100 pings" in result.output and " s" in result.output
    assert sorted(p.name for p in tmp_path.rglob("*.ndjson")) == [
        "pings-00000.ndjson",
        "pings-00000.ndjson",
        "pings-00001.ndjson",
        "pings-00001.ndjson",
    ]
