"""The digest of ``crash-aggregates report``: an overview table and a chart per channel, as an email.

The period is the ``days`` submission dates ending with the newest expected
date (as of the report, minus ``[watchdog] lag_days``), compared with the
``days`` before it. Per channel: usage hours, and for each crash stat its
rate per 1,000 usage hours with the change against the previous period; a
change is marked only when the exact rate-ratio test stays significant after
Benjamini-Hochberg over every cell (at 5%) and the ratio's whole interval is
at least 20% away from 1, as the dashboard's Overview marks them. Each
channel gets a chart of its daily main crash rate with the 95% interval,
drawn on the server (matplotlib's Agg backend: no display, no browser) and
embedded in the email as an image. Findings firing as of the last ``check``
are listed, and everything links to the dashboard (``[dashboard] url``).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.message import EmailMessage
from html import escape
from urllib.parse import urlencode

from .. import rates, stats
from ..config import Config
from ..errors import CrashAggregatesError, ExitCode
from .findings import Finding

FDR, MIN_CHANGE = 0.05, 0.2
#: Below this many usage hours in either period a channel's changes are not marked ("thin").
MIN_HOURS = 100.0
#: Channels shown, most usage first; the rest are left out of the digest (the dashboard has them).
MAX_CHANNELS = 8


class ReportUnavailable(CrashAggregatesError):
    """The report extra (matplotlib) is not installed."""

    exit_code = ExitCode.USAGE


@dataclass
class Cell:
    stat: str
    rate: stats.Rate
    before: stats.Rate
    ratio: float
    p_value: float
    lower: float = math.nan
    upper: float = math.nan
    adjusted: float = 1.0
    verdict: str = "same"  # worse | better | same | thin


@dataclass
class ChannelRow:
    channel: str
    usage_hours: float
    usage_hours_before: float
    cells: list[Cell] = field(default_factory=list)
    #: (date, rate, lower, upper) per submission date of the period, main crashes.
    daily: list[tuple[date, float, float, float]] = field(default_factory=list)


@dataclass
class Digest:
    start: date
    end: date
    stats: list[str]
    rows: list[ChannelRow]
    findings: list[tuple[Finding, str]]
    dashboard: str | None

    def link(self, view: str, **params) -> str | None:
        if not self.dashboard:
            return None
        query = {"from": self.start.isoformat(), "to": self.end.isoformat(), "date": "submission", **params}
        return f"{self.dashboard.rstrip('/')}/{view}?{urlencode(query)}"


def build(config: Config, conn, as_of: date, days: int, findings: list[tuple[Finding, str]]) -> Digest:
    """The digest's numbers, from one query."""
    end = as_of - timedelta(days=config.watch.watchdog.lag_days)
    start = end - timedelta(days=days - 1)
    before_start = start - timedelta(days=days)
    crash = rates.crash_stats(config)
    exposure = rates.exposure_stat(config)
    question = rates.Question(stats=(*crash, exposure), start=before_start, end=end, by=("channel",), axis="submission")
    per_channel: dict[str, dict[date, list[float]]] = {}
    for answer in rates.ask(question, conn):
        channel = answer.group[0]
        if channel is not None:
            per_channel.setdefault(channel, {})[date.fromisoformat(answer.day)] = [v or 0.0 for v in answer.sums]
    rows = []
    width = len(crash) + 1
    for channel, daily in per_channel.items():
        now = [sum(v[i] for d, v in daily.items() if d >= start) for i in range(width)]
        before = [sum(v[i] for d, v in daily.items() if d < start) for i in range(width)]
        row = ChannelRow(channel, now[-1], before[-1])
        for i, stat in enumerate(crash):
            events, old = int(round(now[i])), int(round(before[i]))
            rate = stats.crash_rate(events, now[-1]) if now[-1] > 0 else stats.Rate(math.nan, math.nan, math.nan)
            prior = stats.crash_rate(old, before[-1]) if before[-1] > 0 else stats.Rate(math.nan, math.nan, math.nan)
            ratio = stats.rate_ratio_test(events, now[-1], old, before[-1])
            row.cells.append(Cell(stat, rate, prior, ratio.ratio, ratio.p_value, ratio.lower, ratio.upper))
        main = crash.index("main_crashes") if "main_crashes" in crash else 0
        day = start
        while day <= end:
            v = daily.get(day)
            if v and v[-1] > 0:
                r = stats.crash_rate(int(round(v[main])), v[-1])
                row.daily.append((day, r.estimate, r.lower, r.upper))
            else:
                row.daily.append((day, math.nan, math.nan, math.nan))
            day += timedelta(days=1)
        rows.append(row)
    rows.sort(key=lambda r: -r.usage_hours)
    rows = rows[:MAX_CHANNELS]
    _classify(rows, MIN_HOURS)
    return Digest(start, end, crash, rows, findings, config.dashboard.url)


def _classify(rows: list[ChannelRow], min_hours: float) -> None:
    tested = [(r, c) for r in rows for c in r.cells if r.usage_hours >= min_hours and r.usage_hours_before >= min_hours]
    adjusted = stats.benjamini_hochberg([c.p_value for _, c in tested])
    for r in rows:
        for c in r.cells:
            c.verdict = "thin"
    for (_, c), p in zip(tested, adjusted, strict=True):
        c.adjusted = p
        if p <= FDR and c.lower >= 1 + MIN_CHANGE:
            c.verdict = "worse"
        elif p <= FDR and c.upper <= 1 - MIN_CHANGE:
            c.verdict = "better"
        else:
            c.verdict = "same"


# -- charts ------------------------------------------------------------------------


def chart_png(row: ChannelRow) -> bytes:
    """The channel's daily main crash rate with its 95% interval, as a PNG (matplotlib, Agg)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportUnavailable(
            "the report's charts need the report extra: pip install 'crash-aggregates[report]'"
        ) from None
    figure = Figure(figsize=(6.4, 2.6), dpi=100)
    axes = figure.add_subplot()
    days = [d for d, *_ in row.daily]
    rates = [r for _, r, _, _ in row.daily]
    lows = [lo for _, _, lo, _ in row.daily]
    highs = [hi for _, _, _, hi in row.daily]
    axes.fill_between(days, lows, highs, color="#9ecae1", alpha=0.6, linewidth=0, label="95% interval")
    axes.plot(days, rates, color="#08519c", marker="o", markersize=3, linewidth=1.5, label="main crashes")
    axes.set_title(f"{row.channel}: main crashes per 1,000 usage hours", fontsize=10, loc="left")
    known = [h for h in highs if math.isfinite(h)]
    axes.set_ylim(0, max(known) * 1.1 if known and max(known) > 0 else 1)
    axes.grid(True, color="#dddddd", linewidth=0.6)
    axes.tick_params(labelsize=8)
    # Above the plot, right-aligned: never over the data.
    axes.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1, 1), ncol=2, frameon=False, borderaxespad=0)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# -- the message -----------------------------------------------------------------


def _rate(r: stats.Rate) -> str:
    return "–" if math.isnan(r.estimate) else f"{r.estimate:,.2f}"


def _change(c: Cell) -> str:
    if math.isnan(c.ratio) or math.isinf(c.ratio):
        return ""
    return f"{(c.ratio - 1) * 100:+.0f}%"


def _cell_text(c: Cell) -> str:
    change = _change(c)
    mark = "*" if c.verdict in ("worse", "better") else ""
    return f"{_rate(c.rate)} ({change}{mark})" if change else _rate(c.rate)


def text(digest: Digest) -> str:
    lines = [
        f"crash-aggregates digest, submission dates {digest.start}..{digest.end} (UTC), "
        f"compared with the {(digest.end - digest.start).days + 1} days before",
        "",
        "Crashes per 1,000 usage hours (change; * = significant)",
    ]
    header = ["channel", "usage hours", *digest.stats]
    table = [header]
    for r in digest.rows:
        table.append([r.channel, f"{r.usage_hours:,.0f}"] + [_cell_text(c) for c in r.cells])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in table]
    lines.append("")
    if digest.findings:
        lines.append(f"Firing as of the last check ({len(digest.findings)}):")
        lines += [f"- {f.title} (since {since})" for f, since in digest.findings]
    else:
        lines.append("Nothing firing as of the last check.")
    if digest.dashboard:
        lines += ["", f"Dashboard: {digest.link('overview')}"]
    return "\n".join(lines) + "\n"


def html(digest: Digest, images: dict[str, str]) -> str:
    """The HTML body; ``images`` maps a channel to the Content-ID of its chart."""
    colours = {"worse": "#b00020", "better": "#1b7f3b"}
    head = "".join(f"<th style='padding:4px 8px;text-align:right'>{escape(s)}</th>" for s in digest.stats)
    body = []
    for r in digest.rows:
        cells = []
        for c in r.cells:
            colour = colours.get(c.verdict)
            change = escape(_change(c))
            style = f"color:{colour};font-weight:bold" if colour else "color:#666"
            cells.append(
                f"<td style='padding:4px 8px;text-align:right'>{_rate(c.rate)} "
                f"<span style='{style}'>{change}</span></td>"
            )
        link = digest.link("explore", stat="main_crashes", where=f"channel:{r.channel}")
        name = f"<a href='{escape(link)}'>{escape(r.channel)}</a>" if link else escape(r.channel)
        body.append(
            f"<tr><td style='padding:4px 8px'>{name}</td>"
            f"<td style='padding:4px 8px;text-align:right'>{r.usage_hours:,.0f}</td>{''.join(cells)}</tr>"
        )
    charts = "".join(
        f"<p><img src='cid:{images[r.channel]}' alt='{escape(r.channel)}: main crashes per 1,000 usage hours' "
        f"width='640'></p>"
        for r in digest.rows
        if r.channel in images
    )
    if digest.findings:
        items = "".join(
            f"<li>{escape(f.title)} <small>(since {escape(since)})</small>"
            + (f" <a href='{escape(f.link)}'>view</a>" if f.link else "")
            + "</li>"
            for f, since in digest.findings
        )
        findings = f"<h3>Firing as of the last check</h3><ul>{items}</ul>"
    else:
        findings = "<p>Nothing firing as of the last check.</p>"
    overview = digest.link("overview")
    footer = f"<p><a href='{escape(overview)}'>Open the dashboard</a></p>" if overview else ""
    return (
        "<!doctype html><html><body style='font-family:sans-serif;font-size:14px'>"
        f"<h2>Crash rates, {digest.start} to {digest.end}</h2>"
        f"<p>Submission dates {digest.start}..{digest.end} (UTC) against the same number of days before. "
        "Crashes per 1,000 usage hours; a change is coloured when significant.</p>"
        "<table style='border-collapse:collapse'><tr><th style='padding:4px 8px;text-align:left'>channel</th>"
        f"<th style='padding:4px 8px;text-align:right'>usage hours</th>{head}</tr>{''.join(body)}</table>"
        f"{charts}{findings}{footer}</body></html>"
    )


def message(digest: Digest, policy) -> EmailMessage:
    """The digest as an email: plain text, and HTML with the charts embedded (multipart/related)."""
    from email.utils import make_msgid

    msg = EmailMessage(policy=policy)
    msg["Subject"] = f"[crash-aggregates] crash rates, {digest.start} to {digest.end}"
    msg.set_content(text(digest))
    images = {r.channel: make_msgid(domain="crash-aggregates")[1:-1] for r in digest.rows}
    msg.add_alternative(html(digest, images), subtype="html")
    html_part = msg.get_payload()[1]
    for r in digest.rows:
        html_part.add_related(chart_png(r), "image", "png", cid=f"<{images[r.channel]}>",
                              filename=f"{r.channel}.png")  # fmt: skip
    return msg
