"""midibridge: audio regions in, MIDI clips out, from a daemon your DAW talks to.

    from midibridge import Batch, Client, Cluster, Region, Tempo, transcribe, load_preset

    clip = transcribe(Region.from_file("vox.wav", start_s=1.5, duration_s=4.0), preset="vocal").clip
    with Client() as client:                       # the daemon (`midibridge serve`) does the same work
        result = client.transcribe(Region.from_file("vox.wav"), tempo=Tempo(bpm=96))
    Batch("midi", preset="bass").run(["stems/"])    # `midibridge batch`: .mid files, index.json, index.html
    Batch("midi").run(["stems/"], backend=Cluster(address="head:6379"))  # where it runs: InProcess, Daemon, Cluster

The repository's folders are its subpackages: `model` (the transcription
core), `bridge` (the daemon and its wire protocol), `plugin_host` (the thin
client, the command line, the DAW adapters), `presets`. Importing midibridge
loads neither numpy nor ZeroMQ: `Batch`, `Client`, `Transcriber` and `transcribe`
load what they need when first used. `InProcess`, `Daemon` and `Cluster` are
the backends a batch runs on (plugin_host.runner).
"""

from .model.clip import Bend, Clip, Note, Tempo
from .model.errors import MidibridgeError, ModelError
from .model.presets import Preset, load_preset
from .model.region import Region
from .plugin_host.results import ClientError

__all__ = [
    "Batch",
    "Bend",
    "Client",
    "ClientError",
    "Clip",
    "Cluster",
    "Daemon",
    "InProcess",
    "MidibridgeError",
    "ModelError",
    "Note",
    "Preset",
    "Region",
    "Tempo",
    "Transcriber",
    "load_preset",
    "transcribe",
]


def __getattr__(name: str):
    if name == "Batch":
        from .plugin_host.batch import Batch

        return Batch
    if name in ("InProcess", "Daemon", "Cluster"):
        from .plugin_host import runner

        return getattr(runner, name)
    if name == "Client":
        from .plugin_host.client import Client

        return Client
    if name in ("Transcriber", "transcribe"):
        from .model import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'midibridge' has no attribute {name!r}")
