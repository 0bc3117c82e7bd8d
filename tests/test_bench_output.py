"""Where bench/run.py writes: a plain run leaves the recorded bench/RESULTS.md alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SMALL_RUN = ["--only", "liaison", "--groups", "start-up", "--skip-baseline"]  # a few seconds


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "bench/run.py", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.slow
def test_a_plain_run_writes_outside_the_tracked_results() -> None:
    recorded = REPO / "bench" / "RESULTS.md"
    before = recorded.read_bytes()
    run = bench(*SMALL_RUN)
    assert run.returncode == 0, run.stderr
    assert recorded.read_bytes() == before  # a plain run rewrote it
    assert f"wrote {REPO / 'bench' / 'out' / 'RESULTS.md'}" in run.stderr
    assert "start-up" in (REPO / "bench" / "out" / "RESULTS.md").read_text()


def test_record_is_for_full_runs_only() -> None:
    run = bench("--record", "--quick", *SMALL_RUN)
    assert run.returncode == 2
    assert "--record writes bench/RESULTS.md from a full run" in run.stderr
