"""A batch's index.html: every region in one self-contained page, failures first, each clip as a small piano roll.

Standard library only, and no external assets (inline CSS and SVG, no
scripts): the page opens from a USB stick or a mail attachment as it opened
on the machine that wrote it.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from midibridge.model.clip import Clip, Note, note_name

ROLL_WIDTH_PX, ROLL_HEIGHT_PX = 320, 72
LABELS_PX = 36  # a left margin for the pitch or drum names, so no note hides them
# The GM drum notes the drum engine writes, named so a row of hits says what it is.
GM_DRUMS = {
    35: "kick",
    36: "kick",
    37: "stick",
    38: "snare",
    40: "snare",
    42: "hat",
    44: "pedal hat",
    46: "open hat",
    41: "tom",
    43: "tom",
    45: "tom",
    47: "tom",
    48: "tom",
    50: "tom",
    49: "crash",
    57: "crash",
    51: "ride",
    59: "ride",
}

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2430; background: #fafbfc; }
h1 { font-size: 20px; margin: 0 0 4px; }
p.summary { margin: 0 0 16px; color: #4a5568; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e2e6ec; vertical-align: middle; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #5a6678; background: #f0f2f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.source { max-width: 300px; }
td.source .folder { display: block; font-size: 11px; color: #7a8494; word-break: break-all; }
td.midi { font-family: ui-monospace, monospace; font-size: 12px; white-space: nowrap; }
tr.failed td { background: #fff1f0; }
tr.failed .reason { color: #a8071a; }
code { font-size: 12px; background: #f0f2f5; padding: 1px 4px; border-radius: 3px; }
svg.roll { display: block; background: #f5f7fa; border: 1px solid #dde2e8; border-radius: 3px; }
svg.roll .note { fill: #3b6fd4; }
svg.roll .hit { fill: #d4663b; }
svg.roll text { font: 9px sans-serif; fill: #7a8494; }
"""


def render_report(*, entries: list[dict], clips: list[Clip | None], where: str) -> str:
    """index.html for a batch: `entries` are index.json's regions, `clips` their clips (None where one failed)."""
    rows = sorted(zip(entries, clips), key=lambda row: "error" not in row[0])  # stable: failures first, then in order
    failed = sum("error" in entry for entry in entries)
    summary = f"{len(entries) - failed} of {len(entries)} regions converted ({where})"
    if failed:
        summary += f"; {failed} failed"
    body = "\n".join(_row(entry, clip) for entry, clip in rows)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>midibridge batch</title><style>{STYLE}</style></head>
<body><h1>midibridge batch</h1><p class="summary">{escape(summary)}</p>
<table><thead><tr><th>Source</th><th>MIDI file</th><th>Track</th><th>Position</th><th>Duration</th><th>Preset</th>
<th>Notes</th><th>Clip</th></tr></thead>
<tbody>
{body}
</tbody></table></body></html>
"""


def _row(entry: dict, clip: Clip | None) -> str:
    # The source's whole folder, as index.json has it: two sources of one name say which is which.
    folder, _, name = entry["input"].rpartition("/")
    folder = f'<span class="folder">{escape(folder)}/</span>' if folder else ""
    source = f'<td class="source"><strong>{escape(name)}</strong>{folder}</td>'
    midi = f'<td class="midi">{escape(Path(entry["midi"]).name) if "midi" in entry else "—"}</td>'
    track = f"<td>{escape(str(entry.get('track', '—')))}</td>"
    if "error" in entry:
        reason = f"<code>{escape(entry['error']['code'])}</code> {escape(entry['error']['message'])}"
        return f'<tr class="failed">{source}{midi}{track}<td colspan="5" class="reason">failed: {reason}</td></tr>'
    preset = escape(entry["preset"]["name"])
    roll = (
        piano_roll(clip, duration_s=entry["duration_s"])
        if clip is not None
        else '<span class="reason">its .mid is missing or not a MIDI file: rerun the batch to make it again</span>'
    )
    return (
        f'<tr class="converted">{source}{midi}{track}<td class="num">{entry["position_s"]:.3f} s</td>'
        f'<td class="num">{entry["duration_s"]:.3f} s</td><td>{preset}</td><td class="num">{entry["notes"]}</td>'
        f"<td>{roll}</td></tr>"
    )


def piano_roll(clip: Clip | None, *, duration_s: float) -> str:
    """An inline SVG of the clip: time across, pitch up, one bar per note; a drum clip as one row per GM drum note,
    one mark per hit."""
    notes = clip.notes if clip is not None else ()
    x_per_s = (ROLL_WIDTH_PX - LABELS_PX) / max(duration_s, 1e-3)
    drums = clip is not None and clip.drums
    shapes = _drum_hits(notes, x_per_s=x_per_s) if drums else _note_bars(notes, x_per_s=x_per_s)
    return (
        f'<svg class="roll" xmlns="http://www.w3.org/2000/svg" width="{ROLL_WIDTH_PX}" height="{ROLL_HEIGHT_PX}" '
        f'viewBox="0 0 {ROLL_WIDTH_PX} {ROLL_HEIGHT_PX}" role="img" aria-label="{len(notes)} notes">'
        f"{''.join(shapes)}</svg>"
    )


def _note_bars(notes: tuple[Note, ...], *, x_per_s: float) -> list[str]:
    if not notes:
        return []
    low, high = min(note.pitch for note in notes) - 2, max(note.pitch for note in notes) + 2  # a little air around
    y_per_pitch = ROLL_HEIGHT_PX / (high - low + 1)
    shapes = [
        f'<text x="2" y="{ROLL_HEIGHT_PX - 3}">{note_name(low)}</text>',
        f'<text x="2" y="10">{note_name(high)}</text>',
    ]
    for note in notes:
        width_px = max((note.end_s - note.start_s) * x_per_s, 2)  # the shortest notes stay visible
        shapes.append(
            f'<rect class="note" x="{LABELS_PX + note.start_s * x_per_s:.1f}" '
            f'y="{(high - note.pitch) * y_per_pitch:.1f}" width="{width_px:.1f}" '
            f'height="{max(y_per_pitch - 1, 1.5):.1f}" rx="1">'
            f"<title>{note_name(note.pitch)} at {note.start_s:.2f} s</title></rect>"
        )
    return shapes


def _drum_hits(notes: tuple[Note, ...], *, x_per_s: float) -> list[str]:
    drums = sorted({note.pitch for note in notes})
    row_px = ROLL_HEIGHT_PX / max(len(drums), 1)
    top_px = {pitch: ROLL_HEIGHT_PX - (i + 1) * row_px for i, pitch in enumerate(drums)}  # low notes (kick) below
    name = {pitch: escape(GM_DRUMS.get(pitch, str(pitch))) for pitch in drums}
    shapes = [f'<text x="2" y="{top_px[pitch] + row_px / 2 + 3:.1f}">{name[pitch]}</text>' for pitch in drums]
    for note in notes:
        shapes.append(
            f'<rect class="hit" x="{LABELS_PX + note.start_s * x_per_s:.1f}" '
            f'y="{top_px[note.pitch] + row_px * 0.2:.1f}" width="3" height="{row_px * 0.6:.1f}">'
            f"<title>{name[note.pitch]} at {note.start_s:.2f} s</title></rect>"
        )
    return shapes
