"""Parsing one SQL statement, with syntax errors that say what is wrong and where.

sqlglot's own messages ("Expecting )", "Required keyword: 'expression'
missing for <class ...>") point at the token where the parser gave up, which
is rarely where the mistake is. Before parsing, this module checks what can
be checked on the tokens alone and reports it at the place it happens:

- a quote or comment that is never closed;
- a ``(`` / ``[`` that is never closed, or a closing one without an opener;
- in Presto SQL, the PostgreSQL JSON operators ``->>`` and ``->`` (Presto
  reads map values with subscripts, ``m['key']``);
- a second statement after ``;``.

Every message is one line: ``syntax error at line L, column C: ...``.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from .errors import QueryError, at

_OPENERS = {TokenType.L_PAREN: "(", TokenType.L_BRACKET: "[", TokenType.L_BRACE: "{"}
_CLOSERS = {TokenType.R_PAREN: "(", TokenType.R_BRACKET: "[", TokenType.R_BRACE: "{"}
_PAIR = {"(": ")", "[": "]", "{": "}"}


def dialect_for(name: str) -> sqlglot.Dialect:
    if name == "presto":
        from .presto import CrashPresto

        return CrashPresto()
    if name == "duckdb":
        return sqlglot.Dialect.get_or_raise("duckdb")
    raise QueryError(f"unknown dialect {name!r} (known: presto, duckdb)")


def tokenize(sql: str, dialect: str = "presto") -> list[Token]:
    """The statement's tokens; a QueryError for an unclosed quote or comment."""
    if not sql.strip():
        raise QueryError("empty query: give a SQL statement")
    try:
        tokens = dialect_for(dialect).tokenize(sql)
    except TokenError:
        raise QueryError(_unterminated(sql)) from None
    tokens = _single_statement(sql, tokens)
    if not tokens:
        raise QueryError("empty query: give a SQL statement")
    return tokens


def parse(sql: str, tokens: list[Token], dialect: str = "presto") -> exp.Expression:
    """The statement's tree, or a QueryError naming the problem and where."""
    problems = _bracket_problems(sql, tokens)
    if dialect == "presto":
        problems += _presto_operator_problems(sql, tokens)
    if problems:
        raise QueryError("syntax error at " + "; ".join(problems))
    try:
        trees = dialect_for(dialect).parser(error_level=ErrorLevel.RAISE, max_errors=1).parse(tokens, sql)
    except ParseError as e:
        raise QueryError(_describe_parse_error(sql, e)) from None
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise QueryError("give exactly one SQL statement")
    return trees[0]


def _unterminated(sql: str) -> str:
    """Find the quote or block comment that is never closed."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            if j < 0:
                return f"syntax error at {at(sql, i)}: the comment '/*' is never closed with '*/'"
            i = j + 2
            continue
        if c in "'\"`":
            j = i + 1
            while True:
                j = sql.find(c, j)
                if j < 0:
                    what = "string" if c == "'" else "quoted identifier"
                    return f"syntax error at {at(sql, i)}: the {what} starting with {c} is never closed"
                if sql.startswith(c * 2, j):
                    j += 2
                    continue
                break
            i = j + 1
            continue
        i += 1
    return "syntax error: the query cannot be split into tokens (check quotes and comments)"


def _bracket_problems(sql: str, tokens: list[Token]) -> list[str]:
    stack: list[tuple[str, Token]] = []
    problems = []
    for tok in tokens:
        if tok.token_type in _OPENERS:
            stack.append((_OPENERS[tok.token_type], tok))
        elif tok.token_type in _CLOSERS:
            want = _CLOSERS[tok.token_type]
            if stack and stack[-1][0] == want:
                stack.pop()
            elif stack:
                opener, otok = stack[-1]
                problems.append(
                    f"{at(sql, tok.start)}: found '{tok.text}' but the '{opener}' opened at "
                    f"{at(sql, otok.start)} is still open (expected '{_PAIR[opener]}')"
                )
                return problems
            else:
                problems.append(f"{at(sql, tok.start)}: '{tok.text}' closes nothing (no matching '{want}')")
                return problems
    for opener, tok in stack:
        problems.append(f"{at(sql, tok.start)}: '{opener}' is never closed (a '{_PAIR[opener]}' is missing)")
    return problems


def _presto_operator_problems(sql: str, tokens: list[Token]) -> list[str]:
    """``->>`` and ``m -> 'key'`` are PostgreSQL JSON operators, not Presto SQL."""
    found = []
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.token_type == TokenType.DARROW or (
            tok.token_type == TokenType.ARROW and nxt is not None and nxt.token_type == TokenType.STRING
        ):
            prev = tokens[i - 1].text if i > 0 else "m"
            key = nxt.text if nxt is not None and nxt.token_type == TokenType.STRING else "key"
            found.append((tok, f"{prev}['{key}']"))
    if not found:
        return []
    where = " and ".join(at(sql, tok.start) for tok, _ in found)
    ops = sorted({tok.text for tok, _ in found})
    example = found[0][1]
    return [
        f"{where}: {' and '.join(repr(o) for o in ops)} is not a Presto operator "
        f"(read a map value with a subscript, e.g. {example})"
    ]


def _single_statement(sql: str, tokens: list[Token]) -> list[Token]:
    """The tokens of the one statement; a second statement is refused."""
    parts: list[list[Token]] = [[]]
    for tok in tokens:
        if tok.token_type == TokenType.SEMICOLON:
            parts.append([])
        else:
            parts[-1].append(tok)
    statements = [p for p in parts if p]
    if len(statements) > 1:
        second = statements[1][0]
        raise QueryError(f"only one statement at a time: a second statement starts at {at(sql, second.start)}")
    return statements[0] if statements else []


_MISSING_RE = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>")


def _describe_parse_error(sql: str, error: ParseError) -> str:
    info = error.errors[0] if error.errors else {}
    desc = (info.get("description") or str(error)).strip()
    highlight = (info.get("highlight") or "").strip()
    line, col = info.get("line"), info.get("col")
    where = ""
    if line and col:
        if highlight and "\n" not in highlight:
            col = max(1, col - len(highlight) + 1)
        where = f" at line {line}, column {col}"
    found = f"'{highlight}'" if highlight else "the end of the query"
    if desc.startswith("Expecting "):
        text = f"expected {desc[len('Expecting ') :]} but found {found}"
    elif desc.startswith("Invalid expression / Unexpected token"):
        text = f"unexpected {found}"
    elif m := _MISSING_RE.match(desc):
        text = f"incomplete {_words(m.group(2))}: something is missing after {found}"
    else:
        text = f"{desc.rstrip('.')} (near {found})"
    return f"syntax error{where}: {text}"


def _words(class_name: str) -> str:
    """'GroupBy' -> 'group by'; 'Add' -> "'+' expression" for operators.

    >>> _words("Where"), _words("Add")
    ('WHERE clause', "'+' expression")
    """
    operators = {
        "Add": "+",
        "Sub": "-",
        "Mul": "*",
        "Div": "/",
        "Mod": "%",
        "EQ": "=",
        "NEQ": "<>",
        "GT": ">",
        "GTE": ">=",
        "LT": "<",
        "LTE": "<=",
        "And": "AND",
        "Or": "OR",
    }
    if class_name in operators:
        return f"'{operators[class_name]}' expression"
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", class_name).upper()
    return f"{words} clause" if class_name in {"Where", "Having", "Group", "Order", "Limit"} else words.lower()
