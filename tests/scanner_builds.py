"""The builds of the C scanner that ``fuzz/build.py`` makes (sanitized ones, and one for gcov).

``load_builds`` gives the fuzzer each variant's ``_scan`` module (its ``Scanner`` and ``Summer``);
``install`` (the ``sanitized`` pytest plugin) makes a build *the*
``crash_aggregates._scan`` of the test session.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "fuzz"
MODULE = "crash_aggregates._scan"
SANITIZED = ("sse2", "portable")


def load_build(folder: Path):
    """The ``_scan`` module of one build folder (two builds load side by side: each has its own file)."""
    path = Path(folder) / ("_scan" + sysconfig.get_config_var("EXT_SUFFIX"))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not built: run `make fuzz-build`")
    loader = importlib.machinery.ExtensionFileLoader(MODULE, str(path))
    spec = importlib.util.spec_from_file_location(MODULE, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def load_builds(build: Path = BUILD, variants=SANITIZED) -> dict:
    """``{variant: _scan module}``."""
    return {variant: load_build(Path(build) / variant) for variant in variants}


def asan_loaded() -> bool:
    """Whether AddressSanitizer's runtime is in this process (preloaded)."""
    import ctypes

    return hasattr(ctypes.CDLL(None), "__asan_init")


class ExactScanner:
    """A Scanner that hands the C code every line in a buffer of exactly its length.

    Under AddressSanitizer a read one byte past a line's end is then reported;
    the job's lines (memoryviews into a bigger block) and ``bytes`` (with their
    terminating NUL) would hide it.
    """

    scanner_type = None  # set by install()

    def __init__(self, *args, **kwargs):
        self._scanner = self.scanner_type(*args, **kwargs)

    def extract(self, line):
        from differential import exact_buffer

        with exact_buffer(bytes(line)) as view:
            return self._scanner.extract(view)


def install(variant: str = "sse2", build: Path = BUILD) -> None:
    """Make a build ``crash_aggregates._scan`` (before ``crash_aggregates.reading`` is imported)."""
    if "crash_aggregates.reading" in sys.modules:
        raise RuntimeError("crash_aggregates.reading was imported before the sanitized scanner was installed")
    module = load_build(Path(build) / variant)
    ExactScanner.scanner_type = module.Scanner
    module.Scanner = ExactScanner
    summer_type = module.Summer

    def summer(scanner, *args):
        """The compiled rules (``_scan.Summer``) take the C scanner itself (they read lines as the job gives them)."""
        return summer_type(scanner._scanner, *args)

    module.Summer = summer
    sys.modules[MODULE] = module
