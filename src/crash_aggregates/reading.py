"""Reading a ping's leaves: the values at the JSON paths the rules need, and the line's signature.

``pings.py`` applies the rules to a list of leaf values; this module gets
that list from a line, by the fastest tier that can. The fast tier is
``_scan``, a small C scanner (``_scan.c``, built at install time) that
validates the whole line but makes Python objects only for the values at the
needed paths, so the hundreds of unrelated histograms of a real main ping are
never turned into objects. Where the extension could not be built, a msgspec
decoder whose schema names only those paths does the same job, more slowly.
Both hand the rare odd line (an object where a scalar is needed, a number
they cannot represent such as ``1e400`` or an integer of thousands of digits,
a surrogate escape, very deep nesting) to the generic tier, which decodes it
in full with the standard library and walks plain dicts; it refuses NaN and
unpaired surrogate escapes. Every tier yields the same list of leaf values.

The C scanner also hands back each line's signature: the raw JSON text of
the leaves chosen as ``signed`` (those the rules on the doc type, submission
date, build id and dimensions read). Equal text means equal values, so what
the rules made of a signature can be remembered, and most pings, which
repeat the dimensions of earlier ones, skip those rules.

What is remembered is bounded (the ``MAX_*`` limits below, per process):
past a limit new keys are worked out every time, so memory stays bounded
whatever the input.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

try:
    from ._scan import Scanner
except ImportError:  # built without a C compiler: the msgspec tier does the work
    Scanner = None

#: Signatures remembered: about 0.4 KB each, so at most ~40 MB per process.
MAX_KNOWN_SIGNATURES = 100_000
#: Date strings whose activity date is remembered (pings share them often:
#: ``subsessionStartDate`` has a resolution of a day).
MAX_KNOWN_DATES = 100_000
#: Combinations of dimension value types remembered (a handful in practice).
MAX_KNOWN_TYPES = 10_000

# A \uD800-\uDFFF escape: the only way a (possibly unpaired) surrogate gets in.
_SURROGATE_ESCAPE_RE = re.compile(rb"\\u[dD][89a-fA-F]")
# One escape of a JSON text, taken from the left so that an escaped backslash
# never starts one; a surrogate pair is one match.
_ESCAPE_RE = re.compile(rb"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[^u])")


def remember(memory: dict, key, value, limit: int):
    """``memory[key] = value`` unless ``memory`` holds ``limit`` entries already; returns ``value``.

    >>> memory = {}
    >>> [remember(memory, k, k * 2, limit=2) for k in (1, 2, 3)], memory
    ([2, 4, 6], {1: 2, 2: 4})
    """
    if len(memory) < limit:
        memory[key] = value
    return value


class LongInt(str):
    """An integer literal with more digits than ``int()`` accepts
    (``sys.get_int_max_str_digits()``), kept as its text. Only the generic
    tier makes these; msgspec hands such a value at a needed path over to it.
    """


class LeafReader:
    """The leaves at ``paths`` (tuples of keys) of each line, by the fastest tier that can.

    ``signed``: the positions in ``paths`` of the leaves whose raw text makes
    a line's signature. Setting ``scanner``, or ``scanner`` and ``decoder``,
    to None leaves the work to the slower tiers (the tests compare them).
    """

    def __init__(self, paths: list[tuple[str, ...]], signed: tuple[int, ...]):
        self.paths = paths
        schema = _build_schema(paths)
        if schema is None:  # one path is a prefix of another: generic tier only
            self.scanner = self.decoder = self.extract = None
        else:
            root, self.extract = schema
            self.decoder = msgspec.json.Decoder(root)
            self.scanner = Scanner(scan_spec(paths), len(paths), signed) if Scanner else None

    def leaves(self, line: bytes | memoryview, ascii: bool = False) -> list | None:
        """The values at the paths (None where missing), or None if malformed.

        ``ascii``: the caller knows the line is ASCII. Otherwise the msgspec
        tier checks it here to be UTF-8, because msgspec does not look inside
        the text it skips; the C scanner and json check it themselves.
        """
        leaves = self.read(line, ascii)
        if leaves is not None:
            del leaves[-1]
        return leaves

    def read(self, line: bytes | memoryview, ascii: bool) -> list | None:
        """``leaves``, then the line's signature: the scanner's, or None from the other tiers."""
        if self.scanner is not None:
            leaves = self.scanner.extract(line)
            if leaves is not False:
                return leaves
        elif self.decoder is not None:
            if not ascii and not (type(line) is bytes and line.isascii()):
                try:
                    str(line, "utf-8")
                except UnicodeDecodeError:
                    return None
            try:
                root = self.decoder.decode(line)
            except msgspec.ValidationError:
                pass  # a needed path holds an unexpected type: use the generic tier
            except (msgspec.DecodeError, RecursionError):
                return None
            else:
                leaves = self.extract(root)
                leaves.append(None)
                return leaves
        leaves = self.generic_leaves(line)  # json.loads refuses what is not UTF-8
        if leaves is not None:
            leaves.append(None)
        return leaves

    @property
    def checks_utf8(self) -> bool:
        """Whether every line's UTF-8 is checked whatever the ``ascii`` hint (the C scanner does)."""
        return self.scanner is not None

    def generic_leaves(self, line: bytes) -> list | None:
        """The generic tier, the reference for the others: the standard library's json, then a walk."""
        try:
            doc = json.loads(str(line, "utf-8"), parse_constant=_reject_constant, parse_int=_parse_int)
        except (ValueError, RecursionError):
            return None
        if not isinstance(doc, dict):
            return None
        if _SURROGATE_ESCAPE_RE.search(line) and _has_lone_surrogate(line):
            return None  # an unpaired \uD800-\uDFFF escape is not UTF-8 text (msgspec refuses it too)
        out = []
        for path in self.paths:
            node = doc
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
                if node is None:
                    break
            out.append(node)
        return out


def _build_schema(paths: list[tuple[str, ...]]):
    """A msgspec Struct type that decodes exactly ``paths``, and its leaf extractor.

    The extractor is generated Python (see ``source``): one attribute walk per
    tree node instead of one per path, which matters at millions of pings.
    Returns None when one path is a prefix of another (then the generic tier
    is used for every line: correct, only slower).

    >>> root, extract = _build_schema([("a", "b"), ("a", "c"), ("d",)])
    >>> print(extract.source)
    def extract(n0):
        out = [None] * 3
        n1 = n0.f0
        if n1 is not None:
            out[0] = n1.f0
            out[1] = n1.f1
        out[2] = n0.f1
        return out
    >>> extract(msgspec.json.decode(b'{"a": {"c": 1, "x": [2]}, "d": null}', type=root))
    [None, 1, None]
    """
    if not _prefix_free(paths):
        return None
    lines = ["def extract(n0):", f"    out = [None] * {len(paths)}"]
    counter = iter(range(1, 10**9))

    def make(node: dict, var: str, indent: str):
        fields, rename = [], {}
        for key, child in node.items():
            attr = f"f{len(fields)}"
            rename[attr] = key
            if isinstance(child, list):  # a leaf, decoded as any JSON value
                fields.append((attr, Any, None))
                targets = " = ".join(f"out[{i}]" for i in child)
                lines.append(f"{indent}{targets} = {var}.{attr}")
            else:
                child_var = f"n{next(counter)}"
                lines.append(f"{indent}{child_var} = {var}.{attr}")
                lines.append(f"{indent}if {child_var} is not None:")
                struct = make(child, child_var, indent + "    ")
                fields.append((attr, struct | None, None))
        return msgspec.defstruct(f"Node_{var}", fields, rename=rename, forbid_unknown_fields=False)

    root = make(_path_trie(paths), "n0", "    ")
    lines.append("    return out")
    namespace: dict = {}
    exec("\n".join(lines), namespace)  # code built above from the config's paths
    extract = namespace["extract"]
    extract.source = "\n".join(lines)
    return root, extract


def _prefix_free(paths: list[tuple[str, ...]]) -> bool:
    """Whether no path is a prefix of another (the fast tiers need that)."""
    return not any(len(q) < len(p) and p[: len(q)] == q for p in paths for q in paths)


def _path_trie(paths: list[tuple[str, ...]]) -> dict:
    """Prefix-free ``paths`` as nested dicts; a path ends in the list of its slots
    (its positions in ``paths``: a path listed twice fills both).

    >>> _path_trie([("a", "b"), ("c",), ("a", "d"), ("c",)])
    {'a': {'b': [0], 'd': [2]}, 'c': [1, 3]}
    """
    trie: dict = {}
    for slot, path in enumerate(paths):
        node = trie
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node.setdefault(path[-1], []).append(slot)
    return trie


def scan_spec(paths: list[tuple[str, ...]]) -> tuple:
    """The trie of prefix-free ``paths`` as ``_scan.Scanner`` takes it: (key, slots, child) per key.

    A leaf lists the slots it fills; an inner key lists every slot below it,
    which the scanner empties when the key comes again (the last one wins).

    >>> scan_spec([("a", "b"), ("c",), ("a", "d"), ("c",)])
    ((b'a', (0, 2), ((b'b', (0,), None), (b'd', (2,), None))), (b'c', (1, 3), None))
    """

    def below(node) -> list[int]:
        return node if isinstance(node, list) else [slot for child in node.values() for slot in below(child)]

    def build(node: dict) -> tuple:
        return tuple(
            (key.encode(), tuple(below(child)), None if isinstance(child, list) else build(child))
            for key, child in node.items()
        )

    return build(_path_trie(paths))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _parse_int(text: str):
    try:
        return int(text)
    except ValueError:  # more digits than int() accepts: still a valid JSON number
        return LongInt(text)


def _has_lone_surrogate(line: bytes) -> bool:
    r"""Whether a valid JSON text escapes a surrogate that is not half of a pair, anywhere in it.

    The text, not the decoded document: a key, or a value that a later
    duplicate key replaced, counts as well (fuzzing found that the decoded
    document alone lets those through).

    >>> _has_lone_surrogate(rb'{"a": "\ud83d\ude00", "b": "\\ud800"}')
    False
    >>> _has_lone_surrogate(rb'{"a": "\ud800", "a": 1}'), _has_lone_surrogate(rb'{"\udc00x": 1}')
    (True, True)
    """
    return any(len(m[0]) == 6 and m[0][2] in b"dD" and m[0][3] in b"89abcdefABCDEF" for m in _ESCAPE_RE.finditer(line))
