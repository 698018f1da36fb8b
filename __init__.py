"""midibridge: audio regions in, MIDI clips out, from a daemon your DAW talks to.

    from midibridge import Client, Region, Tempo, transcribe, load_preset

    clip = transcribe(Region.from_file("vox.wav", start_s=1.5, duration_s=4.0), preset="vocal").clip
    with Client() as client:                       # the daemon (`midibridge serve`) does the same work
        result = client.transcribe(Region.from_file("vox.wav"), tempo=Tempo(bpm=96))

The repository's folders are its subpackages: `model` (the transcription
core), `bridge` (the daemon and its wire protocol), `plugin_host` (the thin
client, the command line, the DAW adapters), `presets`. Importing midibridge
loads neither numpy nor ZeroMQ: `Client`, `Transcriber` and `transcribe`
load what they need when first used.
"""

from .model.clip import Bend, Clip, Note, Tempo
from .model.errors import MidibridgeError, ModelError
from .model.presets import Preset, load_preset
from .model.region import Region
from .plugin_host.results import ClientError

__all__ = ["Bend", "Client", "ClientError", "Clip", "MidibridgeError", "ModelError", "Note", "Preset", "Region",
           "Tempo", "Transcriber", "load_preset", "transcribe"]


def __getattr__(name: str):
    if name == "Client":
        from .plugin_host.client import Client
        return Client
    if name in ("Transcriber", "transcribe"):
        from .model import pipeline
        return getattr(pipeline, name)
    raise AttributeError(f"module 'midibridge' has no attribute {name!r}")
