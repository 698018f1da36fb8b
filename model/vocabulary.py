"""midibridge's vocabulary: every error code, progress stage, job priority and job state, each written once.

Standard library only, at the bottom of the layers: model, bridge and
plugin_host all import it, so a code the model raises is the one the daemon
sends and the command line prints. Each word is a str whose text is its
value (enum.StrEnum's behaviour, written out because midibridge still runs
on Python 3.10): it equals its text, and json, str() and f-strings write the
text, so the wire and index.json hold the same strings as before.
bridge/PROTOCOL.md documents every word here; tests/test_vocabulary.py holds
the two to each other.
"""

from __future__ import annotations

from enum import Enum


class _Word(str, Enum):
    """A str whose text is its value, as enum.StrEnum (Python 3.11) makes it."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, format_spec: str) -> str:
        return format(self.value, format_spec)


class Code(_Word):
    """An error's code: stable and snake_case; an error header's `code`, and the `[code]` of the command line's
    `midibridge: error [code]: …`. PROTOCOL.md says when each comes."""

    # The daemon refuses a request at once.
    MALFORMED = "malformed"
    VERSION_MISMATCH = "version_mismatch"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_HEADER = "invalid_header"
    INVALID_SAMPLES = "invalid_samples"
    INVALID_SAMPLE_RATE = "invalid_sample_rate"
    TOO_LARGE = "too_large"
    BUSY = "busy"
    UNKNOWN_JOB = "unknown_job"
    UNKNOWN_STREAM = "unknown_stream"
    FORBIDDEN = "forbidden"
    SHUTTING_DOWN = "shutting_down"
    # A job ends with one of these, or with the model's.
    CANCELLED = "cancelled"
    WORKER_DIED = "worker_died"
    WORKER_HUNG = "worker_hung"
    INTERNAL = "internal"
    # The model's: a region and its audio, a preset, the weights; the same in-process and through the daemon.
    REGION_OUTSIDE_SOURCE = "region_outside_source"
    REGION_EMPTY = "region_empty"
    INVALID_REGION = "invalid_region"
    AUDIO_NOT_FOUND = "audio_not_found"
    AUDIO_UNREADABLE = "audio_unreadable"
    AUDIO_TRUNCATED = "audio_truncated"
    AUDIO_NOT_FINITE = "audio_not_finite"
    INVALID_PRESET = "invalid_preset"
    UNKNOWN_PRESET = "unknown_preset"
    INVALID_OPTION = "invalid_option"
    PLUGIN_UNAVAILABLE = "plugin_unavailable"
    MODEL_MISSING = "model_missing"
    MODEL_CORRUPT = "model_corrupt"
    MODEL_INSTALL_FAILED = "model_install_failed"
    CANNOT_STREAM = "cannot_stream"
    # The client's and the command line's own: never sent by the daemon.
    DAEMON_UNAVAILABLE = "daemon_unavailable"
    CANNOT_SERVE = "cannot_serve"
    INVALID_REQUEST = "invalid_request"
    OUTPUT_IS_INPUT = "output_is_input"
    OUTPUT_NOT_MIDI = "output_not_midi"
    OUTPUT_NOT_A_DIRECTORY = "output_not_a_directory"
    OUTPUT_UNWRITABLE = "output_unwritable"
    ARDOUR = "ardour"
    ARDOUR_SESSION = "ardour_session"
    UNKNOWN_TRACK = "unknown_track"
    CLUSTER_NOT_INSTALLED = "cluster_not_installed"
    CLUSTER_UNAVAILABLE = "cluster_unavailable"
    CLUSTER_MISMATCH = "cluster_mismatch"
    JACK_UNAVAILABLE = "jack_unavailable"


class Stage(_Word):
    """How far a job has come, in order: a `progress` header's `stage`, and the engines' on_progress calls."""

    QUEUED = "queued"  # the daemon's: waiting for a worker
    DECODE = "decode"  # reading the audio and running the preset's chain
    INFER = "infer"  # the engine's model working through the region, rising to 1.0
    NOTES = "notes"  # notes, post-processing and the MIDI file


class EventKind(_Word):
    """A live event's kind (model.clip.LiveEvent): what `midibridge live` writes to its MIDI port and a `stream`
    request's `event` header carries."""

    NOTE_ON = "note_on"
    NOTE_OFF = "note_off"
    BEND = "bend"  # the sounding note's pitch, `semitones` from its key (0 at its note-off)


class Priority(_Word):
    """Who waits for a job: someone looking at the screen (a DAW's right-click, `convert`), or a batch."""

    INTERACTIVE = "interactive"
    BATCH = "batch"


class JobState(_Word):
    """A daemon's job: waiting, running, or how it ended (`status`, `cancel`, the counts)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Said of a job, never held by one: an id the daemon does not know, a running job asked to stop (`cancel`).
    UNKNOWN = "unknown"
    CANCELLING = "cancelling"
