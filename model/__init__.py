"""midibridge's transcription core: audio regions in, MIDI clips out, with Basic Pitch on onnxruntime.

The plain types (Region, Clip, Note, Bend, DecodeOptions) and errors import
with the standard library alone; `Transcriber` pulls in numpy, onnxruntime and
pedalboard on first use.
"""

from .clip import Bend, Clip, Note, Tempo
from .errors import AudioError, Cancelled, ModelError, OptionError, WeightsError
from .engines.basic_pitch.options import DecodeOptions
from .region import Region

__all__ = [
    "AudioError", "Bend", "Cancelled", "Clip", "DecodeOptions", "ModelError", "Note", "OptionError", "Region",
    "Tempo", "Transcriber", "WeightsError",
]


def __getattr__(name):
    if name == "Transcriber":
        from .pipeline import Transcriber
        return Transcriber
    raise AttributeError(f"module 'model' has no attribute {name!r}")
