"""Rerunning `midibridge batch` into the same directory: what is unchanged is skipped, what changed is redone."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import FLUTE, melody, render

MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")


def batch(*args, cwd=None):
    return subprocess.run(
        [MIDIBRIDGE, "batch", *map(str, args), "--in-process"], capture_output=True, text=True, cwd=cwd
    )


def entries(out: Path) -> dict[str, str]:
    """index.json's regions by .mid name, each as its exact JSON text."""
    regions = json.loads((out / "index.json").read_text())["regions"]
    return {Path(e["midi"]).name: json.dumps(e) for e in regions if "midi" in e}


def mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.glob("*.mid")}


def takes_of(tmp_path: Path, piano_line: Path) -> Path:
    takes = tmp_path / "takes"
    takes.mkdir()
    (takes / "a.wav").write_bytes(piano_line.read_bytes())
    render(melody([72, 74, 76], start_s=0.3, step_s=0.5, length_s=0.4), takes / "b.wav", program=FLUTE)
    render(melody([60, 64, 67], start_s=0.3, step_s=0.5, length_s=0.4), takes / "c.wav")
    return takes


def test_a_rerun_skips_every_unchanged_region_and_leaves_its_files_alone(piano_line, tmp_path):
    takes, out = takes_of(tmp_path, piano_line), tmp_path / "midi"
    first = batch(takes, "-o", out)
    before, files_before = entries(out), mtimes(out)

    again = batch(takes, "-o", out)

    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert "skipped" not in first.stdout
    assert "converted 3 of 3 regions" in again.stdout and "3 unchanged since the last run, skipped" in again.stdout
    assert mtimes(out) == files_before, "no .mid written again"
    assert entries(out) == before, "the index lists them as they were, byte for byte"
    entry = json.loads(before["a.mid"])
    assert set(entry) >= {"content_sha256", "preset", "model"}
    assert entry["preset"]["name"] == "default" and entry["model"]["engine"] == "basic-pitch"
    assert (out / "index.html").read_text().count('<tr class="converted">') == 3, "the report still lists them"


def test_a_changed_file_a_deleted_mid_and_a_new_preset_are_redone(piano_line, tmp_path):
    takes, out = takes_of(tmp_path, piano_line), tmp_path / "midi"
    batch(takes, "-o", out)
    before, files_before = entries(out), mtimes(out)
    render(melody([72, 71, 69], start_s=0.3, step_s=0.5, length_s=0.4), takes / "b.wav", program=FLUTE)
    (out / "c.mid").unlink()

    changed = batch(takes, "-o", out)

    assert changed.returncode == 0 and "1 unchanged since the last run, skipped" in changed.stdout, changed.stderr
    assert mtimes(out)["a.mid"] == files_before["a.mid"] and entries(out)["a.mid"] == before["a.mid"]
    assert mtimes(out)["b.mid"] != files_before["b.mid"], "the changed file, redone"
    assert json.loads(entries(out)["b.mid"])["content_sha256"] != json.loads(before["b.mid"])["content_sha256"]
    assert (out / "c.mid").is_file(), "the deleted .mid, redone"

    preset = tmp_path / "mine.toml"
    preset.write_text(
        subprocess.run(
            [MIDIBRIDGE, "presets", "show", "piano"], capture_output=True, text=True, check=True
        ).stdout.replace('name = "piano"', 'name = "mine"')
    )
    mine = batch(takes, "-o", out, "--preset", preset)
    preset.write_text(preset.read_text().replace("transpose_semitones = 0", "transpose_semitones = 12"))
    transposed = batch(takes, "-o", out, "--preset", preset)

    assert mine.returncode == 0 and "skipped" not in mine.stdout, "another preset: everything redone"
    assert transposed.returncode == 0 and "skipped" not in transposed.stdout, "the same name, another table: redone"
    hashes = {json.loads(e)["preset"]["sha256"] for e in entries(out).values()}
    assert len(hashes) == 1 and {json.loads(e)["preset"]["name"] for e in entries(out).values()} == {"mine"}


def test_a_failed_region_is_tried_again(piano_line, tmp_path):
    takes, out = tmp_path / "takes", tmp_path / "midi"
    takes.mkdir()
    (takes / "late.wav").write_text("still copying")
    assert batch(takes, "-o", out).returncode == 1
    (takes / "late.wav").write_bytes(piano_line.read_bytes())

    again = batch(takes, "-o", out)

    assert again.returncode == 0 and "converted 1 of 1 regions" in again.stdout and "skipped" not in again.stdout


def test_a_rerun_that_spells_the_paths_another_way_still_skips_everything(piano_line, tmp_path):
    """From the work folder with relative paths, then from / with absolute ones, then through a symlinked folder."""
    work = tmp_path / "work"
    work.mkdir()
    takes_of(work, piano_line).rename(work / "stems2")
    (tmp_path / "link").symlink_to(work)
    first = batch("stems2", "-o", "batch2", cwd=work)
    out = work / "batch2"
    before, files_before, index_before = entries(out), mtimes(out), (out / "index.json").read_bytes()

    reruns = [batch(work / "stems2", "-o", out, cwd="/"), batch("./link/stems2/", "-o", "link/./batch2", cwd=tmp_path)]

    assert first.returncode == 0 and "skipped" not in first.stdout, first.stderr
    for rerun in reruns:
        assert rerun.returncode == 0 and "3 unchanged since the last run, skipped" in rerun.stdout, rerun.stderr
    assert mtimes(out) == files_before and entries(out) == before
    assert (out / "index.json").read_bytes() == index_before, "the index says the same whatever the spelling"
