# midibridge for REAPER (a Python ReaScript): audio items in, MIDI items out, through `midibridge`.
#
# `midibridge install reaper` writes two actions from this file, each ending in a call of main():
# "convert selected items" and "convert all tracks". REAPER's Python may not be the one midibridge
# is installed in, so this file needs only the standard library and the RPR_ functions REAPER gives
# ReaScripts; it runs `midibridge host transcribe` (MB_COMMAND, set by the installer) and reads its lines.
#
# The RPR_ calls follow REAPER's Python binding: a function with pointer arguments returns a tuple of
# its result and every argument, filled in.
#
# Per item: the active take's source file, the take's start offset, the item's position and length,
# and the take's play rate (a faster take plays the source faster, and higher unless pitch is kept).
# The notes go into a new MIDI item at the item's position on a track named "<track> MIDI", or, for a
# drum item (midibridge's drum engine: GM drum sounds on channel 10), "<track> Drums". Each MIDI item
# keeps the GUID of the audio item it was made from (SOURCE_KEY): a later run replaces the MIDI items an
# earlier one made from the same audio item, where that run left them (a moved or trimmed one stays).

import math
import os
import shlex
import subprocess
import tempfile

MB_COMMAND = "midibridge host transcribe"  # the installer appends this installation's own, then a call of main()
SOURCE_KEY = "P_EXT:midibridge_source"  # a MIDI item's extension data: the GUID of the audio item it was made from
SAME_S = 1e-6  # where a MIDI item still is where a run put it


class Job:
    def __init__(self, number, item, track, track_name):
        self.number = number
        self.item, self.track, self.track_name = item, track, track_name
        self.position = RPR_GetMediaItemInfo_Value(item, "D_POSITION")
        self.length = RPR_GetMediaItemInfo_Value(item, "D_LENGTH")
        take = RPR_GetActiveTake(item)
        self.offset = RPR_GetMediaItemTakeInfo_Value(take, "D_STARTOFFS")
        self.rate = RPR_GetMediaItemTakeInfo_Value(take, "D_PLAYRATE") or 1.0
        keeps_pitch = RPR_GetMediaItemTakeInfo_Value(take, "B_PPITCH")
        self.semitones = RPR_GetMediaItemTakeInfo_Value(take, "D_PITCH")
        if not keeps_pitch:
            self.semitones += 12 * math.log2(self.rate)
        # Functions that fill buffers return every argument back, filled: (source, file name, size).
        self.path = RPR_GetMediaSourceFileName(RPR_GetMediaItemTake_Source(take), "", 4096)[1]
        self.guid = item_string(item, "GUID")
        # (beats since the bar line, project, time, bars, beats a bar, beats since the start, beat unit):
        # beats of the time signature's unit, made quarter notes here, as midibridge counts them.
        beats_in_bar, _, _, _, bar_beats, _, unit = RPR_TimeMap2_timeToBeats(0, self.position, 0, 0, 0, 0)
        self.bpm = RPR_TimeMap_GetDividedBpmAtTime(self.position) * 4.0 / unit
        self.beats_per_bar = bar_beats * 4.0 / unit
        self.bar_offset = beats_in_bar * 4.0 / unit
        self.notes, self.error, self.drums = None, None, False
        self.earlier = []  # (track, item): the MIDI items earlier runs made from this item

    def request_line(self):
        # The take plays `length * rate` seconds of its source, from `offset` on.
        fields = (
            self.number,
            self.path,
            self.offset,
            self.length * self.rate,
            self.position,
            self.bpm,
            self.beats_per_bar,
            self.bar_offset,
        )
        return "\t".join(str(f) for f in fields) + "\n"


def audio_items(scope):
    """(item, track) of the selected items, or of every item of every track; MIDI takes are left alone."""
    if scope == "selected":
        items = [RPR_GetSelectedMediaItem(0, i) for i in range(RPR_CountSelectedMediaItems(0))]
    else:
        items = [
            RPR_GetTrackMediaItem(track, j)
            for track in (RPR_GetTrack(0, i) for i in range(RPR_CountTracks(0)))
            for j in range(RPR_CountTrackMediaItems(track))
        ]
    # A handle is never falsy (a null one reads "(MediaItem_Take*)0x0000000000000000"): count takes instead.
    return [
        (item, RPR_GetMediaItem_Track(item))
        for item in items
        if RPR_CountTakes(item) and not RPR_TakeIsMIDI(RPR_GetActiveTake(item))
    ]


def transcribe(jobs, preset):
    """Fill each job's notes (source seconds from the take's offset) or error, from midibridge's lines."""
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as request:
        request.writelines(job.request_line() for job in jobs)
    command = MB_COMMAND + " " + shlex.quote(request.name)
    if preset:
        command += " --preset " + shlex.quote(preset)
    by_number = {job.number: job for job in jobs}
    try:
        done = subprocess.run(command, shell=True, capture_output=True, text=True)
    finally:
        os.unlink(request.name)
    for line in done.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "NOTES":
            number, _, *words = rest.split()
            by_number[int(number)].notes = []
            by_number[int(number)].drums = words == ["drums"]
        elif kind == "N":
            number, start, end, pitch, velocity, channel = rest.split()
            by_number[int(number)].notes.append((float(start), float(end), int(pitch), int(velocity), int(channel)))
        elif kind == "ERROR":
            number, _, message = rest.partition(" ")
            by_number[int(number)].error = message
    for job in jobs:
        if job.notes is None and job.error is None:
            job.error = "midibridge gave no answer: " + (done.stderr.strip() or done.stdout.strip())[-500:]


def item_string(item, key, value=None):
    """An item's string property `key`; set to `value` when one is given."""
    return RPR_GetSetMediaItemInfo_String(item, key, "" if value is None else value, value is not None)[3]


def track_named(name):
    for i in range(RPR_CountTracks(0)):
        track = RPR_GetTrack(0, i)
        if RPR_GetSetMediaTrackInfo_String(track, "P_NAME", "", False)[3] == name:
            return track
    return None


def midi_track(name, after):
    """The track called `name`, made just below `after` when there is none."""
    track = track_named(name)
    if track is not None:
        return track
    index = int(RPR_GetMediaTrackInfo_Value(after, "IP_TRACKNUMBER"))  # 1-based: the slot just below
    RPR_InsertTrackAtIndex(index, True)
    track = RPR_GetTrack(0, index)
    RPR_GetSetMediaTrackInfo_String(track, "P_NAME", name, True)
    return track


def earlier_items(job):
    """(track, item) of the MIDI items an earlier run made from the job's item, still where that run put them."""
    found = []
    for kind in (" MIDI", " Drums"):
        track = track_named(job.track_name + kind)
        for j in range(RPR_CountTrackMediaItems(track) if track is not None else 0):
            item = RPR_GetTrackMediaItem(track, j)
            if (
                item_string(item, SOURCE_KEY) == job.guid
                and abs(RPR_GetMediaItemInfo_Value(item, "D_POSITION") - job.position) < SAME_S
                and abs(RPR_GetMediaItemInfo_Value(item, "D_LENGTH") - job.length) < SAME_S
            ):
                found.append((track, item))
    return found


def insert(job):
    track = midi_track(job.track_name + (" Drums" if job.drums else " MIDI"), job.track)
    item = RPR_CreateNewMIDIItemInProj(track, job.position, job.position + job.length, False)[0]
    item_string(item, SOURCE_KEY, job.guid)
    take = RPR_GetActiveTake(item)
    shift = 0 if job.drums else int(round(job.semitones))  # a drum note's pitch names the drum, whatever the rate
    for start, end, pitch, velocity, channel in job.notes:
        # Source seconds from the offset become item seconds at the take's play rate.
        on = RPR_MIDI_GetPPQPosFromProjTime(take, job.position + start / job.rate)
        off = RPR_MIDI_GetPPQPosFromProjTime(take, job.position + end / job.rate)
        if 0 <= pitch + shift <= 127:
            RPR_MIDI_InsertNote(take, False, False, on, off, channel, pitch + shift, velocity, True)
    RPR_MIDI_Sort(take)


def main(scope, preset=None):
    found = audio_items(scope)
    if not found:
        RPR_ShowMessageBox(
            "Select one or more audio items first." if scope == "selected" else "The project has no audio items.",
            "midibridge",
            0,
        )
        return
    jobs = [
        Job(n, item, track, RPR_GetSetMediaTrackInfo_String(track, "P_NAME", "", False)[3])
        for n, (item, track) in enumerate(found, start=1)
    ]
    RPR_ShowConsoleMsg("midibridge: transcribing %d item(s)...\n" % len(jobs))
    transcribe(jobs, preset)
    converted = [job for job in jobs if job.notes is not None]
    for job in converted:  # found before any is made: a new item looks just like an earlier run's
        job.earlier = earlier_items(job)
    RPR_Undo_BeginBlock()
    for job in converted:
        for track, item in job.earlier:
            RPR_DeleteTrackMediaItem(track, item)
        insert(job)
    RPR_Undo_EndBlock("midibridge: audio to MIDI", -1)
    RPR_UpdateArrange()
    report = ["%s at %.3f s: %s" % (job.track_name, job.position, outcome(job)) for job in jobs]
    RPR_ShowConsoleMsg("\n".join(report) + "\n")


def outcome(job):
    if job.notes is None:
        return "FAILED " + job.error
    replaced = ", replacing the MIDI item(s) an earlier run made from it" if job.earlier else ""
    return "%d notes%s" % (len(job.notes), replaced)
