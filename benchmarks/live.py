"""`midibridge live`'s figures (issue 22): latency through a real JACK server, agreement with `convert`, the worker's
work per period, and memory over an hour.

    python -m benchmarks.live [--corpus DIR] [--singing N] [--minutes 60] [--out DIR]

- Latency: each clip is played into `midibridge live --latency-report` by a JACK client, in real time (jackd's dummy
  backend, 48 kHz, 256-frame periods, as tests/test_live_jack.py runs it), and a second client records its MIDI port.
  A reference note's latency is the frame of the first note-on of its pitch within LATENCY_WINDOW_S after its onset,
  less the onset's frame; median and 95th percentile over the matched notes, per preset and set. Reference notes are
  the annotations: ../shared/corpus's renders of the single-line instruments (flute and trumpet: `lead`; choir aahs:
  `vocal`) and the first N real sung clips of ../shared/corpus-singing (`vocal`). ../shared/corpus-real holds guitar
  and piano only (polyphonic, no preset of theirs streams), so it has no rows here.
- Agreement: the same clip streamed in 256-sample blocks in this process, against `convert --preset same`: onset F1
  (same pitch, 50 ms) and the 95th percentile of the bend difference where both bend, in cents.
- Work: the share of a 5.3 ms period the live worker spent on each period's audio, elapsed and as its own CPU time
  (from --latency-report).
- Memory: this process's RSS after 1 and after `--minutes` minutes of a line streamed faster than real time.

Skips the corpus rows cleanly (exit 0) without ../shared; the memory figure needs nothing.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import mido
import numpy as np
from pedalboard.io import AudioFile

from midibridge.model.clip import Note
from midibridge.model.live import LiveTranscriber
from midibridge.model.pipeline import Transcriber
from midibridge.model.presets import load_preset
from midibridge.model.region import Region
from midibridge.model.vocabulary import EventKind

from .corpus import SHARED, corpus_parser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from jack_server import PERIOD, RATE, Player, Recorder, jack_server, start_live  # noqa: E402  (the tests' JACK)

LATENCY_WINDOW_S = 0.3
ONSET_TOLERANCE_S = 0.05
PRESET_OF = {"flute": "lead", "trumpet": "lead", "choir_aahs": "vocal", "voice": "vocal"}


def main(argv=None) -> int:
    parser = corpus_parser(__doc__, out=Path("bench-out/live"))
    parser.add_argument("--singing", type=int, default=4, metavar="N", help="real sung clips (default 4)")
    parser.add_argument("--minutes", type=int, default=60, help="streamed minutes for the memory figure")
    args = parser.parse_args(argv)
    if args.minutes < 1:
        parser.error(f"--minutes {args.minutes}: the memory figure compares 1 minute with --minutes; give 1 or more")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"memory": memory(args.minutes)}
    _print_memory(report["memory"])
    cases = clips(args.corpus or SHARED / "corpus", SHARED / "corpus-singing", args.singing)
    if not cases:
        print(f"skipped: no single-line clips in {args.corpus or SHARED / 'corpus'} or {SHARED / 'corpus-singing'}")
    else:
        transcriber = Transcriber(threads=1)
        report["clips"] = [measure(case, transcriber) for case in cases]
        _print_clips(report["clips"])
    (args.out / "live.json").write_text(json.dumps(report, indent=1))
    return 0


def clips(corpus: Path, singing: Path, n_singing: int) -> list[dict]:
    found = []
    for directory, kind in ((corpus, "rendered"), (singing, "real")):
        manifest = directory / "manifest.json"
        if not manifest.is_file():
            continue
        cases = [
            c
            for c in json.loads(manifest.read_text())["cases"]
            if c.get("instrument") in PRESET_OF and c.get("degradation", "none") == "none"
        ]
        for case in sorted(cases, key=lambda c: c["id"])[: n_singing if kind == "real" else None]:
            found.append(
                {
                    "id": case["id"],
                    "set": kind,
                    "preset": PRESET_OF[case["instrument"]],
                    "audio": str(directory / case["audio"]),
                    "midi": str(directory / case["midi"]),
                }
            )
    return found


def measure(case: dict, transcriber: Transcriber) -> dict:
    with AudioFile(case["audio"]) as source:
        audio = source.resampled_to(RATE).read(source.frames * RATE // int(source.samplerate) + RATE)[0]
    reference = reference_notes(Path(case["midi"]))
    preset = load_preset(case["preset"])
    offline = transcriber.transcribe(Region(path=case["audio"]), preset=preset).notes
    live = streamed_notes(transcriber, case["preset"], audio)
    latencies, report = through_jack(audio, case["preset"], reference)
    return {
        **case,
        "notes": len(reference),
        "latency_s": latencies,
        "agreement_f1": onset_f1(live, list(offline)),
        "bend_p95_cents": bend_difference_cents(live, list(offline)),
        "report": report,
    }


def reference_notes(path: Path) -> list[Note]:
    midi, notes, started = mido.MidiFile(str(path)), [], {}
    now = 0.0
    for message in midi:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            started[message.note] = now
        elif message.type in ("note_off", "note_on") and message.note in started:
            notes.append(Note(message.note, started.pop(message.note), now, 100))
    return sorted(notes, key=lambda n: n.start_s)


def streamed_notes(transcriber: Transcriber, preset_name: str, audio: np.ndarray) -> list[Note]:
    """The notes a live stream of `audio` in PERIOD blocks gives, with their bends."""
    preset = load_preset(preset_name)
    stream = LiveTranscriber(transcriber.engine_for(preset.engine), preset, sample_rate_hz=RATE)
    events = [e for i in range(0, len(audio), PERIOD) for e in stream.feed(audio[i : i + PERIOD])] + stream.close()
    notes, on, bends = [], None, []
    for event in events:
        if event.kind == EventKind.NOTE_ON:
            on, bends = event, []
        elif event.kind == EventKind.BEND and on is not None:
            bends.append((event.time_s, event.semitones))
        elif event.kind == EventKind.NOTE_OFF and on is not None:
            from midibridge.model.clip import Bend

            notes.append(Note(on.pitch, on.time_s, event.time_s, on.velocity, tuple(Bend(*b) for b in bends)))
            on = None
    return notes


def through_jack(audio: np.ndarray, preset: str, reference: list[Note]) -> tuple[list[float], str]:
    """Each reference note's latency through `midibridge live` on a real JACK server; its --latency-report."""
    with jack_server() as server:
        recorder, player = Recorder(), Player(audio)
        live = start_live(
            server, "--preset", preset, "--input", "player:out", "--midi-out", "recorder:in", "--latency-report"
        )
        try:
            player.play()
            player.finished.wait(len(audio) / RATE + 30)
            time.sleep(0.5)
            live.send_signal(signal.SIGINT)
            out, _ = live.communicate(timeout=60)
        finally:
            if live.poll() is None:
                live.kill()
            player.close()
            recorder.close()
    ons = recorder.note_ons()
    latencies = []
    for note in reference:
        onset = player.start_frame + round(note.start_s * RATE)
        later = [frame for frame, pitch in ons if pitch == note.pitch and 0 <= frame - onset <= LATENCY_WINDOW_S * RATE]
        if later:
            latencies.append((later[0] - onset) / RATE)
    return latencies, "\n".join(line for line in out.splitlines() if not line.startswith("midibridge live"))


def onset_f1(found: list[Note], truth: list[Note]) -> float:
    used, hits = set(), 0
    for note in truth:
        near = [
            i
            for i, n in enumerate(found)
            if i not in used and n.pitch == note.pitch and abs(n.start_s - note.start_s) <= ONSET_TOLERANCE_S
        ]
        if near:
            used.add(min(near, key=lambda i: abs(found[i].start_s - note.start_s)))
            hits += 1
    return 2 * hits / max(len(found) + len(truth), 1)


def bend_difference_cents(live: list[Note], offline: list[Note]) -> float | None:
    def at(note: Note, time_s: float) -> float:
        before = [b.semitones for b in note.bends if b.time_s <= time_s]
        return before[-1] if before else 0.0

    differences = []
    for note in live:
        twin = next((n for n in offline if n.pitch == note.pitch and abs(n.start_s - note.start_s) <= 0.05), None)
        if twin is None or not twin.bends:
            continue
        differences += [abs(b.semitones - at(twin, b.time_s)) for b in note.bends if b.time_s < twin.end_s]
    return float(np.percentile(differences, 95) * 100) if differences else None


def memory(minutes: int) -> dict:
    """RSS after 1 minute and after `minutes` of a rendered-like line streamed in 100 ms blocks."""
    transcriber = Transcriber(threads=1)
    preset = load_preset("lead")
    stream = LiveTranscriber(transcriber.engine_for(preset.engine), preset, sample_rate_hz=RATE)
    seconds = np.arange(RATE * 2) / RATE
    phrase = np.concatenate(  # two notes a second, as a line
        [
            0.3
            * np.minimum(seconds[: RATE // 2] / 0.01, 1.0)
            * np.sin(2 * np.pi * 440 * 2 ** (k / 12) * seconds[: RATE // 2])
            for k in (0, 2, 4, 5)
        ]
    ).astype(np.float32)
    block, rss, started = RATE // 10, {}, time.perf_counter()
    for minute in range(1, minutes + 1):
        for _ in range(30):  # 30 phrases of 2 s: a minute
            for i in range(0, len(phrase), block):
                stream.feed(phrase[i : i + block])
        if minute in (1, minutes):
            rss[minute] = _rss_mb()
    return {"rss_mb": rss, "minutes": minutes, "seconds_taken": time.perf_counter() - started}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _print_memory(memory: dict) -> None:
    rss = memory["rss_mb"]
    print(
        f"memory: RSS {rss[1]:.0f} MB after 1 minute, {rss[memory['minutes']]:.0f} MB after {memory['minutes']} "
        f"minutes of streamed audio ({memory['seconds_taken']:.0f} s to stream them)"
    )


def _print_clips(results: list[dict]) -> None:
    columns = f"{'notes':>5} {'matched':>7} {'median':>7} {'p95':>6} {'F1':>5} {'bend':>6}"
    print(f"\n{'clip':44} {'set':9} {'preset':6} {columns}")
    for r in results:
        lat = np.asarray(r["latency_s"]) * 1000
        bend = "" if r["bend_p95_cents"] is None else f"{r['bend_p95_cents']:.1f}"
        median, p95 = (np.median(lat), np.percentile(lat, 95)) if len(lat) else (np.nan, np.nan)
        print(
            f"{r['id'][:44]:44} {r['set']:9} {r['preset']:6} {r['notes']:5d} {len(lat):7d} {median:7.0f} {p95:6.0f} "
            f"{r['agreement_f1']:5.2f} {bend:>6}"
        )
    print("\nlatency ms (onset in the audio -> note-on at the MIDI port), pooled over matched notes:")
    for preset in sorted({r["preset"] for r in results}):
        for kind in ("rendered", "real"):
            lat = np.concatenate(
                [r["latency_s"] for r in results if r["preset"] == preset and r["set"] == kind] or [[]]
            )
            if len(lat):
                median, p95 = np.median(lat) * 1000, np.percentile(lat, 95) * 1000
                print(f"  {preset:6} {kind:9} median {median:4.0f}  p95 {p95:4.0f}  over {len(lat)} notes")
    print("\nwork per period (from --latency-report: elapsed, then the worker's CPU time), per clip:")
    for r in results:
        for line in r["report"].splitlines()[-2:]:
            print(f"  {r['id'][:44]:44} {line}")


if __name__ == "__main__":
    sys.exit(main())
