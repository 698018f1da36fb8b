"""The host's tempo in the MIDI file a user imports: only tempos a MIDI file can hold, refused alike in-process and
through a daemon."""

import subprocess
import sys
from pathlib import Path

import mido
import pytest
from daemon_helpers import DaemonProcess

MIDIBRIDGE = str(Path(sys.executable).parent / "midibridge")
EXAMPLE = Path(__file__).parent.parent / "examples" / "ode_to_joy_piano.flac"
TOO_SLOW = "midibridge: error [invalid_option]: host tempo: bpm must be a number in [3.57628, 1000], got 3.0"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    running = DaemonProcess(tmp_path_factory.mktemp("tempo-daemon"))
    yield running
    running.stop()


def convert(*args, env=None):
    return subprocess.run(
        [MIDIBRIDGE, "convert", str(EXAMPLE), "--duration", "4", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
    )


def test_a_tempo_slower_than_a_midi_file_holds_is_refused_alike_in_process_and_through_a_daemon(daemon, tmp_path):
    """3 BPM is 20,000,000 µs a beat, past MIDI's 24 bits: refused before any work, with the range, on both paths;
    4 BPM is written."""
    local = convert("--bpm", 3, "-o", tmp_path / "local.mid", "--in-process")
    through = convert("--bpm", 3, "-o", tmp_path / "daemon.mid", "--daemon", env=daemon.env)

    assert (local.returncode, local.stderr.strip()) == (1, TOO_SLOW)
    assert (through.returncode, through.stderr.strip()) == (1, TOO_SLOW)
    assert not (tmp_path / "local.mid").exists() and not (tmp_path / "daemon.mid").exists()

    for where in ("--in-process", "--daemon"):
        done = convert("--bpm", 4, "-o", tmp_path / "slow.mid", where, env=daemon.env)
        assert done.returncode == 0, done.stderr
        tempo = next(m for m in mido.MidiFile(tmp_path / "slow.mid").tracks[0] if m.type == "set_tempo")
        assert tempo.tempo == 15_000_000


def test_a_client_sending_a_tempo_no_midi_file_holds_hears_which_field_and_the_range(daemon):
    """A client writer's own request with bpm 3 gets the same invalid_option the command line prints."""
    from midibridge.model.region import Region
    from midibridge.plugin_host.results import ClientError

    class WireTempo:  # what a client of another language might send
        def to_dict(self):
            return {"bpm": 3.0}

    with daemon.client() as client, pytest.raises(ClientError) as refused:
        client.transcribe(Region.from_file(EXAMPLE, duration_s=4.0), tempo=WireTempo())

    assert refused.value.code == "invalid_option"
    assert str(refused.value).endswith(TOO_SLOW.removeprefix("midibridge: error [invalid_option]: "))


@pytest.mark.parametrize("where", ["--in-process", "--daemon"])
def test_a_song_in_three_four_gets_a_midi_file_in_three_four(daemon, tmp_path, where):
    """`--beats-per-bar 3`: the imported file's bar lines fall where the song's do, whichever path converts it."""
    done = convert("--beats-per-bar", 3, "-o", tmp_path / "waltz.mid", where, env=daemon.env)

    assert done.returncode == 0, done.stderr
    [meter] = [m for m in mido.MidiFile(tmp_path / "waltz.mid").tracks[0] if m.type == "time_signature"]
    assert (meter.numerator, meter.denominator) == (3, 4)
