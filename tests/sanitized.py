"""pytest plugin (``pytest -p sanitized``, as ``make test-sanitized`` runs it): the session's
C scanner is the AddressSanitizer + UndefinedBehaviorSanitizer build of ``fuzz/build.py``.

Loaded before the conftest files, so before anything imports ``crash_aggregates.reading``.
``SANITIZED_SCANNER`` picks the variant (``sse2``, the default, or ``portable``).
"""

import os

from scanner_builds import asan_loaded, install

if not asan_loaded():
    raise RuntimeError("the sanitized scanner needs AddressSanitizer's runtime preloaded: run `make test-sanitized`")
install(os.environ.get("SANITIZED_SCANNER", "sse2"))


def pytest_report_header(config):
    return f"C scanner: the {os.environ.get('SANITIZED_SCANNER', 'sse2')} build under ASan + UBSan (tests/sanitized.py)"
