"""The documentation covers the CLI, and these checks can fail.

The rule, for everyone who adds a command or an option: every command of the
click tree of ``crash_aggregates.cli`` (subcommands included, hidden ones
aside) has exactly one heading in ``docs/*.md`` whose text starts with the
command in backticks, e.g. ``## `crash-aggregates run` ``, and that section
-- down to the next heading of the same or a higher level -- mentions every
long option of the command. The README shows ``make demo`` and ``make test``
and its links lead somewhere; every page of ``docs/`` has a place in the nav
of ``mkdocs.yml``; and the code the pages name (``pings.PingRules.evaluate``,
``sql/presto.py``) exists, so that a rename or a move updates the docs too.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

import click
import pytest
from helpers import REPO, run

from crash_aggregates.cli import cli

PROGRAM = "crash-aggregates"
DOCS = REPO / "docs"
README = (REPO / "README.md").read_text()


@dataclass(frozen=True)
class Section:
    page: str  # path under docs/
    line: int  # of the heading, counted from 1
    level: int  # 1 for "#", 2 for "##", ...
    title: str
    text: str  # the heading and everything down to the next heading of the same or a higher level


FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")


def sections(page: str, markdown: str) -> list[Section]:
    """The ATX headings of a page with their sections; a ``#`` line in fenced code is not a heading.

    >>> text = "# A\\nintro\\n## B\\n```sh\\n# a comment\\n```\\n### B.1\\n## C\\nlast"
    >>> [(s.line, s.level, s.title, s.text.count("\\n")) for s in sections("p.md", text)]
    [(1, 1, 'A', 8), (3, 2, 'B', 4), (7, 3, 'B.1', 0), (8, 2, 'C', 1)]
    """
    lines = markdown.splitlines()
    headings = []  # (index, level, title)
    fence = None  # the fence that opened the code block we are in
    for i, line in enumerate(lines):
        opener = FENCE.match(line)
        if fence:
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                if not line.strip().lstrip(fence[0]):
                    fence = None
        elif opener:
            fence = opener.group(1)
        elif heading := HEADING.match(line):
            headings.append((i, len(heading.group(1)), heading.group(2)))
    found = []
    for n, (i, level, title) in enumerate(headings):
        end = next((j for j, lvl, _ in headings[n + 1 :] if lvl <= level), len(lines))
        found.append(Section(page, i + 1, level, title, "\n".join(lines[i:end])))
    return found


def mentions(text: str, option: str) -> bool:
    """Whether ``option`` occurs as a whole option (``--data`` is not in ``--data-dir``).

    >>> mentions("`--progress/--no-progress`", "--no-progress"), mentions("--data-dir", "--data")
    (True, False)
    """
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


PACKAGE = REPO / "src" / "crash_aggregates"
CODE_SPAN = re.compile(r"`([^`\n]+)`")
DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
SOURCE_FILE = re.compile(r"[\w./-]+\.(?:py|c)")
#: Extensions that make a dotted code span a file name (``crash_aggregates.zip``), not a name in the code.
FILE_EXTENSIONS = {"py", "c", "zip", "whl", "json", "md", "toml", "yml", "parquet", "sidecar", "gz", "zst"}
#: Folders that users make (``python -m crash_aggregates.spark_job package dist/``): not in the repository.
MADE_BY_USERS = ("dist/",)


def prose(markdown: str) -> str:
    """The page without its fenced code blocks.

    >>> prose("a\\n```sh\\nb\\n```\\nc")
    'a\\nc'
    """
    kept, fence = [], None
    for line in markdown.splitlines():
        opener = FENCE.match(line)
        if fence:
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                if not line.strip().lstrip(fence[0]):
                    fence = None
        elif opener:
            fence = opener.group(1)
        else:
            kept.append(line)
    return "\n".join(kept)


def modules() -> set[str]:
    """The package's modules and subpackages, as the docs name them (``pings``, ``sql.engine``)."""
    found = set()
    for path in PACKAGE.rglob("*"):
        relative = path.relative_to(PACKAGE)
        if path.suffix == ".py" and path.stem != "__init__":
            found.add(".".join(relative.with_suffix("").parts))
        elif path.is_dir() and (path / "__init__.py").exists():
            found.add(".".join(relative.parts))
    return found


def resolves(name: str) -> bool:
    """Whether a dotted name (``pings.PingRules.evaluate``, ``crash_aggregates.query``) exists in the package.

    >>> resolves("pings.PingRules.evaluate"), resolves("pings.PingRules.judge"), resolves("sql.presto.to_duckdb")
    (True, False, True)
    """
    parts = name.removeprefix("crash_aggregates.").split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(["crash_aggregates", *parts[:cut]]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return hasattr(importlib.import_module("crash_aggregates"), parts[0])


def source_exists(name: str) -> bool:
    """Whether a source file a page names is there: from the repository's root or the package's.

    >>> source_exists("sql/presto.py"), source_exists("tests/test_docs.py"), source_exists("accelerate.py")
    (True, True, False)
    """
    folders = [REPO, PACKAGE, *(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists())]
    return any((folder / name).is_file() for folder in folders)


def code_references(pages: dict[str, str], names: set[str]):
    """(page, span, kind) for each code span of the pages that names a source file or a name in the package.

    ``names``: the package's modules; a dotted span is a name in the package when it starts with one of them.
    """
    for page, text in sorted(pages.items()):
        for span in CODE_SPAN.findall(prose(text)):
            span = re.sub(r"\(.*\)\Z", "", span.strip())  # storage.published_partitions(root)
            if SOURCE_FILE.fullmatch(span):
                if not span.startswith(MADE_BY_USERS):
                    yield page, span, "file"
            elif DOTTED.fullmatch(span) and span.rsplit(".", 1)[1] not in FILE_EXTENSIONS:
                head = span.removeprefix("crash_aggregates.")
                if span.startswith("crash_aggregates.") or any(head == m or head.startswith(m + ".") for m in names):
                    yield page, span, "name"


def stale_references(pages: dict[str, str], names: set[str]) -> list[str]:
    """The code spans of the pages that name a module, function or source file that does not exist."""
    found = []
    for page, span, kind in code_references(pages, names):
        if kind == "file" and not source_exists(span):
            found.append(f"docs/{page} names `{span}`, which is not in the repository")
        elif kind == "name" and not resolves(span):
            found.append(f"docs/{page} names `{span}`, which the package does not have")
    return found


def problems(commands: dict[str, list[str]], pages: dict[str, str]) -> list[str]:
    """What the pages lack for the commands (command as typed -> its long options): one line each."""
    every = [s for page, text in sorted(pages.items()) for s in sections(page, text)]
    found = []
    for command, options in commands.items():
        mine = [s for s in every if s.title.startswith(f"`{command}`")]
        if not mine:
            found.append(
                f"`{command}` has no section in docs/: add a heading '## `{command}`' to the page "
                "that documents it, and mention each of its options below it"
            )
        elif len(mine) > 1:
            where = ", ".join(f"docs/{s.page}:{s.line}" for s in mine)
            found.append(f"`{command}` has {len(mine)} headings ({where}): keep exactly one")
        elif missing := [o for o in options if not mentions(mine[0].text, o)]:
            found.append(
                f"docs/{mine[0].page}:{mine[0].line}: the section of `{command}` does not mention "
                f"{', '.join(missing)} (until the next heading of the same or a higher level)"
            )
    return found


def command_tree(group: click.Group = cli, typed: str = PROGRAM):
    """(the command as typed, the click command) for every visible command below ``group``, depth first."""
    ctx = click.Context(group, info_name=typed)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        yield f"{typed} {name}", command
        if isinstance(command, click.Group):
            yield from command_tree(command, f"{typed} {name}")


def long_options(command: click.Command) -> list[str]:
    """Every ``--option`` of a command, both halves of ``--flag/--no-flag`` included."""
    return [
        opt
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden
        for opt in (*param.opts, *param.secondary_opts)
        if opt.startswith("--")
    ]


COMMANDS = {typed: long_options(command) for typed, command in command_tree()}
PAGES = {p.relative_to(DOCS).as_posix(): p.read_text() for p in sorted(DOCS.rglob("*.md"))}


# -- the real docs --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_has_one_section_that_mentions_its_options(command):
    found = problems({command: COMMANDS[command]}, PAGES)
    assert not found, "\n".join(found)


def test_the_tree_is_walked():
    # Guards the walk itself: an empty tree would make every test above pass.
    assert {f"{PROGRAM} {name}" for name in ("run", "sql", "config", "ddl", "generate")} <= set(COMMANDS)
    assert {"--input", "--workers", "--progress", "--no-progress"} <= set(COMMANDS[f"{PROGRAM} run"])


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_explains(command):
    result = run(*command.split()[1:], "--help")
    assert result.exit_code == 0, result.output
    assert len(dict(command_tree())[command].help or "") > 40, f"`{command}` needs a real --help text"


def test_readme_shows_the_two_commands():
    for command in ("make demo", "make test"):
        assert re.search(rf"\b{command}\b", README), f"README.md does not show `{command}`"


def test_readme_links_lead_somewhere():
    targets = re.findall(r"\]\((?!https?:|#)([^)#\s]+)", README)
    assert targets, "README.md links to nothing"
    broken = [t for t in targets if not (REPO / t).exists()]
    assert not broken, f"README.md links to files that do not exist: {broken}"


def test_every_page_is_in_the_nav():
    nav = re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?(\S+\.md)\s*$", (REPO / "mkdocs.yml").read_text(), re.MULTILINE)
    left_out = sorted(set(PAGES) - set(nav))
    assert not left_out, f"add these pages to the nav of mkdocs.yml (the strict build fails without): {left_out}"
    missing = sorted(set(nav) - set(PAGES))
    assert not missing, f"mkdocs.yml's nav names pages that docs/ does not have: {missing}"


def test_the_code_the_docs_name_exists():
    checked = {kind for page, _, kind in code_references(PAGES, modules()) if page == "architecture.md"}
    assert checked == {"file", "name"}, "the architecture page's references are not being checked"
    found = stale_references(PAGES, modules())
    assert not found, "update the docs to the code:\n" + "\n".join(found)


REFERENCES = [
    # (a page, what stale_references reports: each a substring of one line)
    ("`pings.PingRules.evaluate`, `storage.published_partitions(root)`, `crash_aggregates.query`", []),
    ("`sql/presto.py`, `src/crash_aggregates/sql/engine.py`, `_scan.c`, `tests/test_docs.py`", []),
    ("`engines.embedded.plan_tasks` and `config.Config.stat_columns`", []),
    ("not code: `environment.build.buildId`, `crash_aggregates.zip`, `dist/spark_job.py`, `x.y`", []),
    ("```python\n`pings.gone` in a code block is an example\n```", []),
    ("`pings.PingRules.judge`", ["docs/p.md names `pings.PingRules.judge`, which the package does not have"]),
    ("`sql.accelerate.accelerate`", ["`sql.accelerate.accelerate`, which the package does not have"]),
    ("`crash_aggregates.sql.NoSuchError`", ["`crash_aggregates.sql.NoSuchError`"]),
    ("`accelerate.py` and `sql/gone.py`", ["`accelerate.py`, which is not in", "`sql/gone.py`, which is not in"]),
]


@pytest.mark.parametrize("page, expected", REFERENCES)
def test_stale_references_are_reported(page, expected):
    found = stale_references({"p.md": page}, modules())
    assert len(found) == len(expected), found
    for line, part in zip(found, expected, strict=True):
        assert part in line, (part, line)


# -- the check itself: it reports what is wrong ---------------------------------------------------

RUN = {"tool run": ["--input", "--workers"]}
CASES = [
    # (what, commands, pages, expected problems: each a substring of one reported line)
    ("documented", RUN, {"a.md": "# A\n## `tool run`\n`--input PATH`, `--workers N`\n"}, []),
    ("in a subsection", RUN, {"a.md": "## `tool run`\n--input\n### Tuning\n--workers\n"}, []),
    ("heading with more text", RUN, {"a.md": "## `tool run`: the daily job\n--input --workers\n"}, []),
    (
        "no heading",
        RUN,
        {"a.md": "# A\ncrash rates: `tool run --input x --workers 2`\n"},
        ["`tool run` has no section"],
    ),
    (
        "two headings",
        RUN,
        {"a.md": "## `tool run`\n--input --workers\n", "b.md": "# B\n\n## `tool run` again\n--input --workers\n"},
        ["`tool run` has 2 headings (docs/a.md:1, docs/b.md:3)"],
    ),
    (
        "an option after the section",
        RUN,
        {"a.md": "## `tool run`\n--input\n## Other\n--workers\n"},
        ["docs/a.md:1: the section of `tool run` does not mention --workers"],
    ),
    (
        "an option after a higher heading",
        RUN,
        {"a.md": "### `tool run`\n--input\n# Next page part\n--workers\n"},
        ["does not mention --workers"],
    ),
    ("only a longer option", {"tool sql": ["--data"]}, {"a.md": "## `tool sql`\n--data-dir\n"}, ["mention --data "]),
    (
        "a heading in a code block",
        RUN,
        {"a.md": "# A\n```text\n## `tool run`\n--input --workers\n```\n"},
        ["`tool run` has no section"],
    ),
    (
        "a comment in a code block",
        RUN,
        {"a.md": "## `tool run`\n```sh\n# --input comes first\ntool run --input x\n```\n--workers\n"},
        [],
    ),
    ("a longer command's heading", RUN, {"a.md": "## `tool run --workers 2`\n--input\n"}, ["has no section"]),
    (
        "a subcommand",
        {"tool watch": [], "tool watch check": ["--since"]},
        {"a.md": "## `tool watch`\n### `tool watch check`\n--since\n"},
        [],
    ),
    (
        "several things at once",
        {**RUN, "tool sql": ["--data"]},
        {"a.md": "## `tool run`\n--workers\n"},
        ["does not mention --input", "`tool sql` has no section"],
    ),
]


@pytest.mark.parametrize("what, commands, pages, expected", CASES, ids=[case[0] for case in CASES])
def test_the_check_reports(what, commands, pages, expected):
    found = problems(commands, pages)
    assert len(found) == len(expected), found
    for line, part in zip(found, expected, strict=True):
        assert part in line, (part, line)


def without_lines(text: str, section: Section, option: str) -> str:
    """The page without the lines of ``section`` that mention ``option``."""
    lines = text.splitlines()
    first = section.line - 1
    last = first + section.text.count("\n")
    return "\n".join(line for i, line in enumerate(lines) if not (first <= i <= last and mentions(line, option)))


def section_of(command: str) -> Section:
    """The section of ``command`` in the real docs (the first, if the docs break the rule)."""
    found = [s for page, text in PAGES.items() for s in sections(page, text) if s.title.startswith(f"`{command}`")]
    assert found, f"`{command}` has no section in docs/ (see test_command_has_one_section_that_mentions_its_options)"
    return found[0]


@pytest.mark.parametrize(
    "command, option", [(command, option) for command, options in sorted(COMMANDS.items()) for option in options]
)
def test_removing_an_option_from_the_docs_fails(command, option):
    section = section_of(command)
    pages = {**PAGES, section.page: without_lines(PAGES[section.page], section, option)}
    found = problems({command: COMMANDS[command]}, pages)
    assert len(found) == 1 and f"the section of `{command}` does not mention" in found[0], found
    assert mentions(found[0].split("does not mention", 1)[1], option), found


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_removing_a_command_heading_fails(command):
    section = section_of(command)
    lines = PAGES[section.page].splitlines()
    pages = {**PAGES, section.page: "\n".join(lines[: section.line - 1] + lines[section.line :])}
    assert problems({command: COMMANDS[command]}, pages) == [
        f"`{command}` has no section in docs/: add a heading '## `{command}`' to the page "
        "that documents it, and mention each of its options below it"
    ]
