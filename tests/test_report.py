"""``crash-aggregates report``: the digest arrives by email with its charts as images, and the right numbers."""

from __future__ import annotations

import pytest
import watchdata
from helpers import run
from mailhook import SmtpServer
from test_watch import AS_OF, destinations

PNG = b"\x89PNG\r\n\x1a\n"


def nightly_rates() -> tuple[float, float]:
    """Main crashes per 1,000 h on nightly, 2016-03-09..15 and the 7 days before, from watchdata's construction."""
    per_build = watchdata.NIGHTLY_HOURS / 1000
    normal = watchdata.NIGHTLY_RATE * per_build
    days_now = 6  # 2016-03-12 is missing
    # Every day of the period has the regression build and 6 normal ones; the week before, 7 normal ones.
    now = days_now * (6 * normal + watchdata.REGRESSION_RATE * per_build) / (days_now * 7 * watchdata.NIGHTLY_HOURS)
    before = 7 * 7 * normal / (7 * 7 * watchdata.NIGHTLY_HOURS)
    return now * 1000, before * 1000


def test_digest_arrives_with_a_chart_per_channel(tmp_path):
    data = watchdata.build(tmp_path / "aggregates")
    with SmtpServer() as smtp:
        config = watchdata.write_config(tmp_path / "config.toml", destinations(smtp))
        # A check first, so that the digest lists what fires.
        run("check", "--data", data, "--config", config, "--state", tmp_path / "s.sqlite3", "--as-of", AS_OF,
            "--no-notify")  # fmt: skip
        result = run("report", "--data", data, "--config", config, "--state", tmp_path / "s.sqlite3",
                     "--as-of", AS_OF, "--email")  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "report: email: sent to stability@example.org, oncall@example.org" in result.stderr
        [mail] = smtp.received
    message = mail.message
    assert message["Subject"] == "[crash-aggregates] crash rates, 2016-03-09 to 2016-03-15"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert sorted(p.get_filename() for p in images) == ["nightly.png", "release.png"]
    for image in images:
        assert image.get_content().startswith(PNG) and len(image.get_content()) > 5000
        assert f"cid:{image['Content-ID'][1:-1]}" in html  # embedded in the HTML, not attached beside it
    now, before = nightly_rates()
    nightly = next(line for line in text.splitlines() if line.startswith("nightly"))
    assert f"{now:,.2f} ({(now / before - 1) * 100:+.0f}%*)" in nightly  # a significant rise: marked
    release = next(line for line in text.splitlines() if line.startswith("release"))
    assert "1.00 (+0%)" in release and "600,000" in release
    assert "Firing as of the last check (4):" in text
    assert f"[build_id={watchdata.REGRESSION}]" in text
    assert "http://dashboard.test/overview?from=2016-03-09&to=2016-03-15" in text
    assert "http://dashboard.test/explore?" in html and "channel%3Anightly" in html


def test_report_to_a_file_or_the_terminal(tmp_path):
    data = watchdata.build(tmp_path / "aggregates", missing=())
    config = watchdata.write_config(tmp_path / "config.toml")
    printed = run("report", "--data", data, "--config", config, "--as-of", AS_OF, "--state", tmp_path / "none")
    assert printed.exit_code == 0 and printed.stdout.startswith("crash-aggregates digest, submission dates")
    assert "Nothing firing as of the last check." in printed.stdout
    assert not (tmp_path / "none").exists()  # reading the findings never creates a state file
    out = tmp_path / "digest.eml"
    written = run("report", "--data", data, "--config", config, "--as-of", AS_OF, "--days", "3", "--output", out)
    assert written.exit_code == 0 and out.read_bytes().count(b"Content-Type: image/png") == 2
    assert b"crash rates, 2016-03-13 to 2016-03-15" in out.read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (("--email",), "--email needs a [notify.email] destination"),
        (("--to", "a@b.c"), "--to goes with --email"),
        (("--days", "0"), "Invalid value for '--days'"),
    ],
)
def test_report_usage_errors(tmp_path, args, message):
    config = watchdata.write_config(tmp_path / "config.toml")
    result = run("report", "--data", tmp_path, "--config", config, *args)
    assert result.exit_code == 2 and message in result.output


def test_a_refusing_server_is_retried_and_reported(tmp_path):
    data = watchdata.build(tmp_path / "aggregates")
    with SmtpServer() as smtp:
        smtp.refuse = "554 5.7.1 rejected"
        config = watchdata.write_config(tmp_path / "config.toml", destinations(smtp))
        result = run("report", "--data", data, "--config", config, "--as-of", AS_OF, "--email", "--to", "x@y.z")
        assert result.exit_code == 1 and smtp.attempts == 3
        assert "report: email: failed after 3 attempt(s): SMTP 554 5.7.1 rejected" in result.stderr
