"""A batch folder is a library: a second batch into it adds to it, never replacing another source's .mid or entry."""

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import mido
from conftest import FLUTE, melody, render, synthesize, write_audio

from midibridge.model.clip import Note

MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")


def batch(*args, cwd=None):
    return subprocess.run(
        [MIDIBRIDGE, "batch", *map(str, args), "--in-process"], capture_output=True, text=True, cwd=cwd
    )


def tone(path: Path, pitch: int) -> Path:
    """A second of one note: which source a .mid came from shows in its pitch."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_audio(path, synthesize([Note(pitch, 0.1, 0.8, 100)], length_s=1.0), 44100)


def pitches(midi: Path) -> set[int]:
    """The pitches a .mid plays (a tone's upper partials may show as notes above it)."""
    return {m.note for m in mido.MidiFile(file=io.BytesIO(midi.read_bytes())) if m.type == "note_on" and m.velocity}


def sources(out: Path) -> dict[str, str]:
    """index.json as .mid name -> the source it was made from."""
    return {Path(e["midi"]).name: e["input"] for e in json.loads((out / "index.json").read_text())["regions"]}


def test_a_second_batch_into_the_same_folder_keeps_the_first_and_never_overwrites_its_files(tmp_path):
    stems, stems2, out = tmp_path / "stems", tmp_path / "stems2", tmp_path / "midi"
    first_takes = {"ode.mid": tone(stems / "live" / "ode.wav", 64), "ode-2.mid": tone(stems / "ode.wav", 60)}
    first = batch(stems, "-o", out)
    before = {name: (out / name).read_bytes() for name in first_takes}
    first_index = json.loads((out / "index.json").read_text())["regions"]

    tone(stems2 / "ode.wav", 67)
    tone(stems2 / "ode-2.wav", 72)  # a stem that is the first batch's second .mid name

    second = batch(stems2, "-o", out)

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "converted 2 of 2 regions" in second.stdout and "(with 2 regions of earlier batches)" in second.stdout
    assert {name: (out / name).read_bytes() for name in first_takes} == before, "the first batch's files untouched"
    assert sources(out) == {
        "ode.mid": str(stems / "live" / "ode.wav"),
        "ode-2.mid": str(stems / "ode.wav"),
        "ode-3.mid": str(stems2 / "ode.wav"),
        "ode-2-2.mid": str(stems2 / "ode-2.wav"),
    }, "a new source never takes another's name, even one that is its own stem"
    assert json.loads((out / "index.json").read_text())["regions"][:2] == first_index, "earlier entries as they were"
    for name, pitch in {"ode.mid": 64, "ode-2.mid": 60, "ode-3.mid": 67, "ode-2-2.mid": 72}.items():
        assert pitch == min(pitches(out / name)), f"{name} holds its own source's notes"
    rows = re.findall(r'<tr class="converted">(.*?)</tr>', (out / "index.html").read_text(), flags=re.S)
    shown = {
        re.search(r'<td class="midi">(.*?)</td>', row)[1]: re.sub(r"<[^>]+>", "", row.split("</td>")[0]) for row in rows
    }
    assert shown == {name: f"{Path(source).name}{Path(source).parent}/" for name, source in sources(out).items()}, (
        "the report names each .mid with its source's file and whole folder"
    )


def test_rerunning_either_batch_skips_its_regions_and_leaves_the_library_byte_for_byte(tmp_path, piano_line):
    stems, stems2, out = tmp_path / "stems", tmp_path / "stems2", tmp_path / "midi"
    for folder in (stems, stems2):
        folder.mkdir()
    (stems / "ode.wav").write_bytes(piano_line.read_bytes())
    render(melody([72, 74, 76], start_s=0.3, step_s=0.5, length_s=0.4), stems2 / "ode.wav", program=FLUTE)
    batch(stems, "-o", out)
    batch(stems2, "-o", out)
    library = {p.name: p.read_bytes() for p in out.iterdir()}

    again = [batch(folder, "-o", out) for folder in (stems, stems2)]

    assert [run.returncode for run in again] == [0, 0]
    assert all("1 unchanged since the last run, skipped" in run.stdout for run in again)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == library, "index.json, report and .mid files alike"


def test_an_entry_whose_source_is_gone_stays_in_the_library_and_is_no_failure_of_this_run(tmp_path):
    stems, out = tmp_path / "stems", tmp_path / "midi"
    tone(stems / "bass.wav", 40)
    gone = tone(stems / "lead.wav", 72)
    batch(stems, "-o", out)
    gone.unlink()

    after = batch(stems, "-o", out)

    assert after.returncode == 0 and "converted 1 of 1 regions" in after.stdout, after.stderr
    assert "(with 1 region of earlier batches)" in after.stdout and "failed" not in after.stderr
    assert sources(out) == {"bass.mid": str(stems / "bass.wav"), "lead.mid": str(gone)}
    assert min(pitches(out / "lead.mid")) == 72


def test_a_mid_file_nobody_listed_is_never_written_over(tmp_path):
    stems, out = tmp_path / "stems", tmp_path / "midi"
    tone(stems / "ode.wav", 60)
    out.mkdir()
    (out / "ode.mid").write_bytes(b"MThd my own arrangement")

    done = batch(stems, "-o", out)

    assert done.returncode == 0, done.stderr
    assert (out / "ode.mid").read_bytes() == b"MThd my own arrangement"
    assert sources(out) == {"ode-2.mid": str(stems / "ode.wav")}


def test_an_output_that_cannot_be_a_folder_is_refused_before_anything_runs(tmp_path, piano_line):
    take = tmp_path / "ode.flac"
    take.write_bytes(piano_line.read_bytes())
    plain = subprocess.run(
        [MIDIBRIDGE, "batch", "ode.flac", "-o", "ode.flac"], capture_output=True, text=True, cwd=tmp_path
    )
    nowhere = subprocess.run(
        [MIDIBRIDGE, "batch", "ode.flac", "-o", "/proc/nope"], capture_output=True, text=True, cwd=tmp_path
    )

    assert plain.returncode == nowhere.returncode == 1
    assert plain.stderr == (
        "midibridge: error [output_not_a_directory]: ode.flac is a file, not a directory: -o "
        "names the directory the .mid files, index.json and index.html go into. Give a new or "
        "existing directory, e.g. -o midi\n"
    )
    assert nowhere.stderr.startswith("midibridge: error [output_unwritable]: cannot make the directory /proc/nope: ")
    assert nowhere.stderr.endswith("Give -o a directory you can write to.\n") and "Traceback" not in nowhere.stderr
    assert take.read_bytes() == piano_line.read_bytes() and sorted(p.name for p in tmp_path.iterdir()) == ["ode.flac"]


def test_a_mid_file_deleted_or_spoilt_since_never_stops_the_next_batch(tmp_path):
    """The library's files are the user's: a .mid they deleted leaves the index with it, one they overwrote is made
    again when its source is in the batch, and the report says which one it cannot show."""
    out = tmp_path / "midi"
    bass, keys, pad = (
        tone(tmp_path / "takes" / f"{name}.wav", pitch) for name, pitch in (("bass", 40), ("keys", 60), ("pad", 67))
    )
    assert batch(bass, keys, pad, "-o", out).returncode == 0
    (out / "bass.mid").unlink()
    for spoilt in ("keys.mid", "pad.mid"):
        (out / spoilt).write_text("not MIDI any more")

    again = batch(keys, "-o", out)

    assert again.returncode == 0 and "converted 1 of 1 regions" in again.stdout, again.stderr
    assert "unchanged" not in again.stdout and 60 == min(pitches(out / "keys.mid")), "the spoilt .mid is made again"
    assert sorted(sources(out)) == ["keys.mid", "pad.mid"], "the deleted .mid's entry went with it"
    report = (out / "index.html").read_text()
    assert report.count("its .mid is missing or not a MIDI file") == 1, "pad's row says why it shows no notes"


def test_a_batch_from_python_is_the_command_s_batch(tmp_path):
    """`from midibridge import Batch`: the same library, index.json and .mid bytes as `midibridge batch`."""
    from midibridge import Batch, InProcess

    takes = [tone(tmp_path / "takes" / "a.wav", 60), tone(tmp_path / "takes" / "b.wav", 64)]
    assert batch(*takes, "-o", tmp_path / "cli").returncode == 0

    done = Batch(tmp_path / "api").run(takes, backend=InProcess())
    again = Batch(tmp_path / "api").run(takes, backend=InProcess())

    assert (done.converted, done.failed, again.skipped) == (2, [], 2)
    for name in ("a.mid", "b.mid"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    index = {folder: (tmp_path / folder / "index.json").read_text() for folder in ("api", "cli")}
    assert index["api"] == index["cli"].replace(str(tmp_path / "cli"), str(tmp_path / "api")), (
        "the same entries, each .mid named in its own folder"
    )
