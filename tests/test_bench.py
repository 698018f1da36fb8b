"""The benchmarks are scripts, not tests; here only their promise to skip cleanly without ../shared's corpus."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "module",
    [
        "benchmarks.transcription",
        "benchmarks.presets",
        "benchmarks.tune_presets",
        "benchmarks.daemon",
        "benchmarks.drums",
        "benchmarks.tune_drums",
        "benchmarks.singing",
    ],
)
def test_a_benchmark_without_the_corpus_says_so_and_succeeds(module, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", module, "--corpus", str(tmp_path), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )

    assert done.returncode == 0 and done.stdout.startswith("skipped: no corpus manifest"), done.stderr
