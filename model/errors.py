"""midibridge's one error root, and the model's errors: every failure carries a Code and a message that says the fix.

Standard library only: bridge and plugin_host subclass MidibridgeError too
(ProtocolError, ClientError, …), so one `except MidibridgeError` catches any
of them, each constructed the same way: (code, message, *, job_id=None).
"""

from __future__ import annotations

from .vocabulary import Code


class MidibridgeError(Exception):
    """Base of every error midibridge raises on purpose.

    `code` is stable and machine-readable (model.vocabulary.Code; the daemon
    sends it on the wire, the command line prints it); the message is for
    people and names the input and the fix. `job_id`: the job it ended, when
    it ended one.
    """

    def __init__(self, code: str, message: str, *, job_id: str | None = None):
        super().__init__(message)
        self.code = code  # a Code; from the wire, a newer daemon's may be a code this version does not know
        self.job_id = job_id


class ModelError(MidibridgeError):
    """Base of the errors midibridge's transcription core raises."""


class AudioError(ModelError):
    """The audio of a region cannot be used (missing, unreadable, empty, not finite, out of range)."""


class WeightsError(ModelError):
    """The model weights are missing, corrupt or cannot be installed."""


class OptionError(ModelError):
    """An option or preset value is outside what is allowed."""


class Cancelled(ModelError):
    """The caller asked to stop (raised from a progress callback); its code is always `cancelled`."""

    def __init__(self, message: str):
        super().__init__(Code.CANCELLED, message)
