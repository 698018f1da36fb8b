"""The one error root of `model`: every failure carries a stable `code` and a message that says the fix."""


class ModelError(Exception):
    """Base of every error midibridge's transcription core raises.

    `code` is stable and machine-readable (the daemon forwards it on the
    wire); the message is for people and names the input and the fix.
    """

    code = "model_error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class AudioError(ModelError):
    """The audio of a region cannot be used (missing, unreadable, empty, not finite, out of range)."""

    code = "audio_unreadable"


class WeightsError(ModelError):
    """The model weights are missing, corrupt or cannot be installed."""

    code = "model_missing"


class OptionError(ModelError):
    """An option or preset value is outside what is allowed."""

    code = "invalid_option"


class Cancelled(ModelError):
    """The caller asked to stop (raised from a progress callback)."""

    code = "cancelled"
