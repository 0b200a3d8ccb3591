"""The watchdog's commands: ``check`` (data checks and crash-rate alerts) and ``report`` (the email digest).

Thin wrappers over ``watch.command``; ``cli.py`` adds them to its group.
"""

from __future__ import annotations

import sys
from datetime import date

import click

from .cli_common import (
    JobFailed,
    UsageError,
    check_location,
    data_option,
    exit_codes_help,
    load_config_or_fail,
    parse_date,
)
from .errors import CrashAggregatesError, ExitCode

CHECK_EXIT_CODES_HELP = exit_codes_help(
    {
        ExitCode.OK: "nothing fires",
        ExitCode.FIRING: "at least one check or rule fires (with --backtest: would have fired), "
        "or the data cannot be read",
        ExitCode.USAGE: "bad arguments or configuration",
    }
)


def data_or_fail(data_path: str | None, config) -> str:
    """--data, else the config's [data] output, checked like run's locations."""
    data_path = data_path or config.output
    if not data_path:
        raise UsageError("no data: pass --data PATH or set [data] output in the config")
    return check_location("--data", data_path)


def parse_date_option(name: str, text: str | None) -> date | None:
    try:
        return parse_date(text) if text else None
    except ValueError as e:
        raise UsageError(f"{name}: {e}") from None


@click.command("check", epilog=CHECK_EXIT_CODES_HELP)
@data_option
@click.option("--config", "config_path", metavar="FILE", help="TOML config with [watchdog], [[alerts]] and [notify].")
@click.option("--as-of", metavar="D", help="Evaluate as if today (UTC) were D, YYYY-MM-DD: to review a past day.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one line per finding that fires or lacks data, then a summary; json: every finding.",
)
@click.option(
    "--backtest",
    nargs=2,
    metavar="FROM TO",
    help=(
        "Replay the [[alerts]] rules with each date from FROM to TO as the newest date evaluated, and list when "
        "they would have fired. Sends nothing, remembers nothing."
    ),
)
@click.option(
    "--state",
    "state_path",
    metavar="FILE",
    help="SQLite state file (what was told, and when). Default: [state] path, else the user's data directory.",
)
@click.option(
    "--notify/--no-notify",
    default=True,
    show_default=True,
    help="Send what is new to the [notify] destinations (--no-notify: evaluate and remember only).",
)
def check_cmd(data_path, config_path, as_of, fmt, backtest, state_path, notify):
    """Check the published aggregates: missing dates, volume, quality, crash-rate rules.

    \b
    Data checks (from each partition's report, over [watchdog] window_days):
      missing  a date of the window without a published partition
      volume   pings processed outside 50%-200% of the median of the 7 dates before
      quality  a reason's share of ignored pings above twice its median (and above 1%)
    Rules: every [[alerts]] entry of the config, each group (e.g. each build)
    OK, FIRING or INSUFFICIENT (less usage than min_usage_hours).

    What starts firing, gets worse, or resolves is sent to the [notify]
    destinations (email, webhooks) once; the state file remembers what was told.
    """
    from .state import StateError, resolve_path
    from .watch import command

    config = load_config_or_fail(config_path)
    data = data_or_fail(data_path, config)
    day = parse_date_option("--as-of", as_of)
    try:
        if backtest:
            if as_of:
                raise UsageError("--backtest replays its own dates: it does not take --as-of")
            first, last = (parse_date_option("--backtest", t) for t in backtest)
            if first > last:
                raise UsageError(f"--backtest: {first} is after {last}")
            if (last - first).days > 366:
                raise UsageError("--backtest: at most 367 dates at once")
            if not config.watch.alerts:
                raise UsageError("--backtest replays the [[alerts]] rules, and the config has none")
            sys.exit(command.backtest(config, data, first, last, fmt))
        try:
            state = resolve_path(state_path, config.state_path, (data, config.input))
        except StateError as e:
            raise UsageError(str(e)) from None
        sys.exit(command.check(config, data, day, fmt, state, send=notify))
    except CrashAggregatesError as e:  # the data or the state file cannot be used
        raise JobFailed.of(e) from None


@click.command("report")
@data_option
@click.option("--config", "config_path", metavar="FILE", help="TOML config with [notify.email] and [dashboard] url.")
@click.option("--as-of", metavar="D", help="Report as if today (UTC) were D, YYYY-MM-DD.")
@click.option(
    "--days",
    type=click.IntRange(1, 92),
    default=7,
    show_default=True,
    metavar="N",
    help="Submission dates covered (ending yesterday, or [watchdog] lag_days back), compared with the N before.",
)
@click.option("--email", "send", is_flag=True, help="Send the digest to the [notify.email] destinations.")
@click.option(
    "--to", "to", multiple=True, metavar="ADDRESS", help="With --email: send to ADDRESS instead (repeatable)."
)
@click.option(
    "--output",
    "output_path",
    metavar="FILE",
    help="Write the digest as an email file (.eml, with its images) to FILE, e.g. to look at it first.",
)
@click.option(
    "--state",
    "state_path",
    metavar="FILE",
    help="State file whose firing findings the digest lists. Default: [state] path, else the user's data directory.",
)
def report_cmd(data_path, config_path, as_of, days, send, to, output_path, state_path):
    """A digest of crash rates: the overview table and a chart per channel, by email.

    Per channel, each crash stat's rate per 1,000 usage hours over the last
    --days submission dates and its change against the days before (marked
    when significant), a chart of the daily main crash rate rendered on the
    server as an image, the findings firing as of the last `check`, and links
    to the dashboard ([dashboard] url). Without --email or --output the text
    version is printed. Run it from cron (daily or weekly).
    """
    from .state import StateError, resolve_path
    from .watch import command
    from .watch.report import ReportUnavailable

    config = load_config_or_fail(config_path)
    data = data_or_fail(data_path, config)
    day = parse_date_option("--as-of", as_of)
    if to and not send:
        raise UsageError("--to goes with --email")
    if send and not config.watch.notify.emails():
        raise UsageError("--email needs a [notify.email] destination in the config")
    try:
        state = resolve_path(state_path, config.state_path, (data, config.input))
    except StateError as e:
        raise UsageError(str(e)) from None
    try:
        sys.exit(command.report(config, data, day, days, send, to, output_path, state))
    except ReportUnavailable as e:
        raise UsageError(str(e)) from None
    except CrashAggregatesError as e:
        raise JobFailed.of(e) from None
