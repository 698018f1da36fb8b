"""Rendering a MIDI file to audio the way ../shared's corpus was rendered: FluidSynth with the FluidR3 GM soundfont
(Debian's fluid-soundfont-gm), reverb and chorus off, gain 0.7. The tests, the benchmarks and the bundled example
render through here, so that their audio is made alike."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def can_render() -> bool:
    """Whether fluidsynth and the soundfont are installed (`make setup` installs both)."""
    return shutil.which("fluidsynth") is not None and SOUNDFONT.is_file()


def render_midi_file(midi_path: Path, audio_path: Path, *, sample_rate_hz: int = 44100) -> Path:
    """Render `midi_path` to `audio_path` (stereo; its suffix names the file type: .wav, .flac, …)."""
    subprocess.run(
        [
            "fluidsynth",
            "-ni",
            "-g",
            "0.7",
            "-r",
            str(sample_rate_hz),
            "-o",
            "synth.reverb.active=0",
            "-o",
            "synth.chorus.active=0",
            "-T",
            audio_path.suffix.lstrip("."),
            "-F",
            str(audio_path),
            str(SOUNDFONT),
            str(midi_path),
        ],
        check=True,
        capture_output=True,
    )
    return audio_path
