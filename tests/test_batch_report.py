"""A batch's index.html as a person sees it: opened in headless Chromium, every region listed, the failure first.

The screenshot is kept as an artefact in bench-out/batch-report/ (gitignored, like all of bench-out/), to look at by
hand after a change to the page.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FLUTE, PIANO_LINE, REPO, melody, render

from midibridge.model.clip import Note

MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")
ARTEFACTS = REPO / "bench-out" / "batch-report"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(page: Path, *options: str, profile: Path) -> str:
    """Run headless Chromium on `page` with a fresh profile; its stdout (the DOM, with --dump-dom)."""
    if shutil.which("chromium") is None:
        pytest.fail("headless Chromium shows the batch report: run `make setup` (Debian package chromium)")
    done = subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *options, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_batch_report_shows_the_failure_first_then_every_region_with_its_piano_roll(piano_line, tmp_path):
    takes = tmp_path / "takes"
    takes.mkdir()
    (takes / "a_piano.wav").write_bytes(piano_line.read_bytes())
    render(melody([72, 74, 76, 77, 79], start_s=0.3, step_s=0.5, length_s=0.4), takes / "b_flute.wav", program=FLUTE)
    (takes / "c_broken.wav").write_text("not audio")
    out = tmp_path / "midi"

    done = subprocess.run(
        [MIDIBRIDGE, "batch", str(takes), "-o", str(out), "--in-process"], capture_output=True, text=True
    )

    assert done.returncode == 1 and "converted 2 of 3 regions" in done.stdout, done.stderr
    page = out / "index.html"
    html = page.read_text()
    assert not re.search(r"<script|<link|src=|url\(|https?://(?!www\.w3\.org/2000/svg)", html), (
        "self-contained: no scripts, no external assets"
    )
    dom = chromium(page, "--dump-dom", profile=tmp_path / "profile-dom")
    rows = re.findall(r'<tr class="(\w+)">(.*?)</tr>', dom, flags=re.S)
    assert [kind for kind, _ in rows] == ["failed", "converted", "converted"]
    assert "c_broken.wav" in rows[0][1] and "audio_unreadable" in rows[0][1]
    index = {Path(e["input"]).name: e for e in json.loads((out / "index.json").read_text())["regions"]}
    for (_, row), name in zip(rows[1:], ["a_piano.wav", "b_flute.wav"]):
        entry = index[name]
        assert name in row and f"{entry['position_s']:.3f} s" in row and f"{entry['duration_s']:.3f} s" in row
        assert f">{entry['notes']}<" in row and ">default<" in row
        [svg] = re.findall(r"<svg.*?</svg>", row, flags=re.S)
        assert svg.count('class="note"') == entry["notes"] > 0
    assert index["a_piano.wav"]["notes"] >= len(PIANO_LINE) - 2

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTEFACTS / "index.png"
    screenshot.unlink(missing_ok=True)
    chromium(page, f"--screenshot={screenshot}", "--window-size=1200,900", profile=tmp_path / "profile-shot")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shutil.copy(page, ARTEFACTS / "index.html")


def test_a_drum_batch_draws_each_hit_on_the_row_of_its_drum(tmp_path):
    kick, snare, closed_hat = 36, 38, 42
    beat = [
        Note(drum, 0.5 + 0.6 * n, 0.6 + 0.6 * n, 110)
        for n in range(8)
        for drum in (closed_hat, kick if n % 2 == 0 else snare)
    ]
    takes = tmp_path / "takes"
    takes.mkdir()
    render(beat, takes / "beat.wav", drums=True)
    out = tmp_path / "midi"

    done = subprocess.run(
        [MIDIBRIDGE, "batch", str(takes), "-o", str(out), "--preset", "drums", "--in-process"],
        capture_output=True,
        text=True,
    )

    assert done.returncode == 0, done.stderr
    [entry] = json.loads((out / "index.json").read_text())["regions"]
    dom = chromium(out / "index.html", "--dump-dom", profile=tmp_path / "profile")
    [svg] = re.findall(r"<svg.*?</svg>", dom, flags=re.S)
    assert svg.count('class="hit"') == entry["notes"] >= len(beat) - 1
    assert re.findall(r"<text[^>]*>(\w+)</text>", svg) == ["kick", "snare", "hat"], "rows named by GM drum, bottom up"
