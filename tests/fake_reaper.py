"""A REAPER project in memory that answers the RPR_ calls midibridge's ReaScript makes.

REAPER cannot run here, so its API is faked: only the calls the script makes,
with REAPER's Python conventions (handles are strings such as
"(MediaItem*)0x0000000000000002"; a call with pointer arguments returns a
tuple of its result and every argument, filled in; PPQ 960 from the MIDI
item's start; "divided" BPM counts beats of the time signature's unit; an item
has a GUID and keeps "P_EXT:" extension strings, as REAPER's items do).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

PPQ = 960


@dataclass
class FakeTake:
    path: str
    offset: float = 0.0
    rate: float = 1.0
    keeps_pitch: bool = True
    pitch: float = 0.0
    midi: bool = False
    notes: list = field(default_factory=list)  # (start_ppq, end_ppq, channel, pitch, velocity)


@dataclass
class FakeItem:
    track: FakeTrack
    position: float
    length: float
    take: FakeTake | None
    selected: bool = False
    guid: str = ""
    ext: dict = field(default_factory=dict)  # "P_EXT:name" -> value


@dataclass
class FakeTrack:
    name: str
    items: list = field(default_factory=list)


class FakeReaper:
    def __init__(self, *, bpm: float = 100.0, time_signature: tuple[int, int] = (4, 4)):
        self.bpm, (self.numerator, self.denominator) = bpm, time_signature
        self.tracks: list[FakeTrack] = []
        self.undo_blocks: list[str] = []
        self.console: list[str] = []
        self.messages: list[str] = []
        self._open_undo = 0
        self._handles: dict[str, object] = {}
        self._ids = itertools.count(1)

    # Building the project ---------------------------------------------------------

    def add_track(self, name: str) -> FakeTrack:
        track = FakeTrack(name)
        self.tracks.append(track)
        return track

    def add_item(
        self, track: FakeTrack, *, position: float, length: float, take: FakeTake | None, selected: bool = False
    ) -> FakeItem:
        item = FakeItem(track, position, length, take, selected, guid=f"{{{next(self._ids):08X}-FAKE-GUID}}")
        track.items.append(item)
        return item

    def _handle(self, kind: str, thing) -> str:
        for handle, known in self._handles.items():
            if known is thing and handle.startswith(f"({kind}*)"):
                return handle
        handle = f"({kind}*)0x{next(self._ids):016X}"
        self._handles[handle] = thing
        return handle

    def _get(self, handle: str):
        return self._handles[handle]

    # The API ------------------------------------------------------------------------

    def functions(self) -> dict:
        return {name: getattr(self, name) for name in dir(self) if name.startswith("RPR_")}

    def RPR_CountSelectedMediaItems(self, project):
        return len(self._selected())

    def RPR_GetSelectedMediaItem(self, project, index):
        return self._handle("MediaItem", self._selected()[index])

    def _selected(self):
        return [item for track in self.tracks for item in track.items if item.selected]

    def RPR_CountTracks(self, project):
        return len(self.tracks)

    def RPR_GetTrack(self, project, index):
        return self._handle("MediaTrack", self.tracks[index])

    def RPR_CountTrackMediaItems(self, track):
        return len(self._get(track).items)

    def RPR_GetTrackMediaItem(self, track, index):
        return self._handle("MediaItem", self._get(track).items[index])

    def RPR_CountTakes(self, item):
        return 0 if self._get(item).take is None else 1

    def RPR_GetActiveTake(self, item):
        take = self._get(item).take
        return "(MediaItem_Take*)0x0000000000000000" if take is None else self._handle("MediaItem_Take", take)

    def RPR_TakeIsMIDI(self, take):
        return self._get(take).midi

    def RPR_GetMediaItem_Track(self, item):
        return self._handle("MediaTrack", self._get(item).track)

    def RPR_GetMediaItemInfo_Value(self, item, key):
        return {"D_POSITION": self._get(item).position, "D_LENGTH": self._get(item).length}[key]

    def RPR_GetMediaItemTakeInfo_Value(self, take, key):
        t = self._get(take)
        return {"D_STARTOFFS": t.offset, "D_PLAYRATE": t.rate, "B_PPITCH": float(t.keeps_pitch), "D_PITCH": t.pitch}[
            key
        ]

    def RPR_GetMediaItemTake_Source(self, take):
        return self._handle("PCM_source", self._get(take))

    def RPR_GetMediaSourceFileName(self, source, buffer, size):
        return (source, self._get(source).path, size)

    def RPR_TimeMap_GetDividedBpmAtTime(self, time):
        return self.bpm * self.denominator / 4

    def RPR_TimeMap2_timeToBeats(self, project, time, measures, bar_beats, full_beats, unit):
        beats = time * self.bpm / 60 * self.denominator / 4  # in the time signature's unit
        return (
            beats % self.numerator,
            project,
            time,
            int(beats // self.numerator),
            self.numerator,
            beats,
            self.denominator,
        )

    def RPR_GetSetMediaTrackInfo_String(self, track, name, value, set_new):
        assert name == "P_NAME"
        if set_new:
            self._get(track).name = value
        return (True, track, name, self._get(track).name, set_new)

    def RPR_GetSetMediaItemInfo_String(self, item, name, value, set_new):
        thing = self._get(item)
        if name == "GUID":
            assert not set_new, "a GUID is REAPER's to give"
            return (True, item, name, thing.guid, set_new)
        assert name.startswith("P_EXT:")
        if set_new:
            thing.ext[name] = value
        return (name in thing.ext, item, name, thing.ext.get(name, ""), set_new)

    def RPR_DeleteTrackMediaItem(self, track, item):
        assert self._open_undo, "items are deleted inside an undo block"
        self._get(track).items.remove(self._get(item))
        return True

    def RPR_GetMediaTrackInfo_Value(self, track, key):
        assert key == "IP_TRACKNUMBER"
        return float(self.tracks.index(self._get(track)) + 1)

    def RPR_InsertTrackAtIndex(self, index, defaults):
        self.tracks.insert(index, FakeTrack(""))

    def RPR_CreateNewMIDIItemInProj(self, track, start, end, quarter_notes):
        assert not quarter_notes and self._open_undo, "MIDI items are made inside an undo block, in seconds"
        item = self.add_item(self._get(track), position=start, length=end - start, take=FakeTake("", midi=True))
        return (self._handle("MediaItem", item), track, start, end, quarter_notes)

    def RPR_MIDI_GetPPQPosFromProjTime(self, take, time):
        item = next(i for t in self.tracks for i in t.items if i.take is self._get(take))
        return (time - item.position) * self.bpm / 60 * PPQ

    def RPR_MIDI_InsertNote(self, take, selected, muted, start, end, channel, pitch, velocity, no_sort):
        self._get(take).notes.append((start, end, channel, pitch, velocity))
        return (True, take, selected, muted, start, end, channel, pitch, velocity, no_sort)

    def RPR_MIDI_Sort(self, take):
        self._get(take).notes.sort()

    def RPR_Undo_BeginBlock(self):
        self._open_undo += 1

    def RPR_Undo_EndBlock(self, description, flags):
        self._open_undo -= 1
        self.undo_blocks.append(description)

    def RPR_UpdateArrange(self):
        pass

    def RPR_ShowConsoleMsg(self, message):
        self.console.append(message)

    def RPR_ShowMessageBox(self, message, title, kind):
        self.messages.append(message)
        return 1
