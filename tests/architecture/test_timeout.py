"""No test can hang: a test that blocks fails with a traceback within the timeout."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]

HUNG = '''
import threading

def test_waits_for_a_lock_nobody_releases():
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()  # blocks forever
'''


@pytest.mark.timeout(90)
def test_a_hung_test_fails_within_the_configured_timeout(tmp_path: Path) -> None:
    (tmp_path / "test_hung.py").write_text(HUNG)
    started = time.monotonic()
    # The repository's own configuration, with the per-test timeout made short.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path),
         "-o", "timeout=3", str(tmp_path / "test_hung.py")],
        capture_output=True, text=True, timeout=80, check=False, cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Timeout" in result.stdout
    assert "1 failed" in result.stdout
    assert "test_waits_for_a_lock_nobody_releases" in result.stdout
    assert elapsed < 60
