"""midibridge's transcription core: audio regions in, MIDI clips out. No sockets, no DAWs.

A region is read and checked, run through its preset's chain, handed to an
engine (model.engines: Basic Pitch, and the others presets may choose), and
its notes post-processed into a clip and a MIDI file (pipeline.Transcriber).
The plain types and errors import with the standard library alone;
`Transcriber` pulls in numpy, onnxruntime and pedalboard on first use.
"""

from .clip import Bend, Clip, Note, Tempo
from .errors import AudioError, Cancelled, ModelError, OptionError, WeightsError
from .region import Region

__all__ = [
    "AudioError",
    "Bend",
    "Cancelled",
    "Clip",
    "ModelError",
    "Note",
    "OptionError",
    "Region",
    "Tempo",
    "Transcriber",
    "WeightsError",
]


def __getattr__(name):
    if name == "Transcriber":
        from .pipeline import Transcriber

        return Transcriber
    raise AttributeError(f"module 'midibridge.model' has no attribute {name!r}")
