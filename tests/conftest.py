"""Shared pytest set-up. Deliberately small: the browser tests keep their fixtures in
tests/test_browser.py (with tests/browser_lab.py), so unit tests can add fixtures here freely."""

from __future__ import annotations

import os
from pathlib import Path


def pytest_report_header(config):
    chromium = Path("/usr/bin/chromium")
    ci = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
    if chromium.exists():
        state = "present"
    else:
        state = "missing: browser tests " + ("fail (CI=true)" if ci else "skip")
    return [f"chromium: {chromium} {state}"]
