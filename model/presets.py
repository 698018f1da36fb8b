"""Presets as data: TOML files of a processing chain, decoding options and musical post-processing.

Built-in presets live in the `presets` package; a user's, in
`~/.config/midibridge/presets/` (platformdirs), shadow them by name; any
path to a .toml file works too. A preset is checked completely when loaded,
before any audio is touched, and every complaint names the file, the key, the
bad value and what is allowed.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from .engines import DEFAULT_ENGINE, ENGINES
from .errors import ModelError, OptionError
from .options import OptionGroup, PostOptions, Spec, check_table
from .steps import STEPS
from .vocabulary import Code

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

SCHEMA = 2  # 2 added [engine]; a schema 1 file is a Basic Pitch preset
SCHEMAS = (1, 2)
ENGINE_SPECS = {"name": Spec(str, choices=tuple(ENGINES))}
# A preset's top-level keys; [engine], [[chain]], [decode] and [post] are checked by their own tables.
PRESET_SPECS = {
    "schema": Spec(int, choices=SCHEMAS),
    "name": Spec(str),
    "description": Spec(str),
    "engine": Spec(dict),
    "chain": Spec(list),
    "decode": Spec(dict),
    "post": Spec(dict),
}
DEFAULT_PRESET = "default"


@dataclass(frozen=True)
class Step:
    """One preprocessing step: its kind (a key of model.steps.STEPS) and its parameters, defaults filled in."""

    kind: str
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"step": self.kind, **self.params}


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A whole processing chain: preprocessing steps, the engine and its decoding options, post-processing.

    `decode` is the engine's own options table (model.engines.ENGINES); left
    out, the engine's defaults.
    """

    name: str
    description: str = ""
    engine: str = DEFAULT_ENGINE
    chain: tuple[Step, ...] = ()
    decode: OptionGroup | None = None  # None: the engine's defaults, filled in on construction
    post: PostOptions = PostOptions()
    source: str = field(default="inline", compare=False)  # where it was read from: not part of what it does

    def __post_init__(self):
        check_table({"name": self.engine}, ENGINE_SPECS, where="[engine]")
        options = ENGINES[self.engine].options
        if self.decode is None:
            object.__setattr__(self, "decode", options())
        elif not isinstance(self.decode, options):
            raise OptionError(
                Code.INVALID_OPTION,
                f"[decode] of engine {self.engine!r} must be {options.__name__}, not {type(self.decode).__name__}",
            )
        if ENGINES[self.engine].drums:
            _check_drum_post(self.post, engine=self.engine)

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "name": self.name,
            "description": self.description,
            "engine": {"name": self.engine},
            "chain": [step.to_dict() for step in self.chain],
            "decode": self.decode.to_dict() if self.decode else {},
            "post": self.post.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "inline preset", source: str = "inline") -> Preset:
        """Check every key of `data` and build the preset; OptionError names `where`, the key and the value."""
        if not isinstance(data, dict):
            raise OptionError(Code.INVALID_PRESET, f"{where}: a preset is a table of keys, not {type(data).__name__}")
        try:
            check_table(data, PRESET_SPECS, where=where)
            if "schema" not in data:
                raise OptionError(
                    Code.INVALID_OPTION,
                    f"{where}: schema must be {SCHEMA}, got None (add `schema = {SCHEMA}` at the top)",
                )
            if "engine" in data and data["schema"] < 2:
                raise OptionError(
                    Code.INVALID_OPTION, f"{where}: [engine] needs `schema = 2` (schema 1 presets are Basic Pitch's)"
                )
            check_table(data.get("engine", {}), ENGINE_SPECS, where="[engine]")
            engine, chain = data.get("engine", {}).get("name", DEFAULT_ENGINE), data.get("chain", [])
            return cls(
                name=data.get("name", "unnamed"),
                description=data.get("description", ""),
                engine=engine,
                chain=tuple(_step(entry, f"{where}: chain step {i + 1}") for i, entry in enumerate(chain)),
                decode=ENGINES[engine].options.from_dict(data.get("decode", {}), where=f"{where}: [decode]"),
                post=PostOptions.from_dict(data.get("post", {}), where=f"{where}: [post]"),
                source=source,
            )
        except OptionError as error:
            # The option groups check themselves without knowing the file.
            message = str(error) if str(error).startswith(where) else f"{where}: {error}"
            raise OptionError(
                Code.INVALID_PRESET if error.code == Code.INVALID_OPTION else error.code, message
            ) from error


# [post] settings that change pitch or voicing: meaningless for drum notes, whose pitch names the drum.
DRUM_REFUSED_POST = {"transpose_semitones": 0, "scale": "chromatic", "monophonic": "off"}


def _check_drum_post(post: PostOptions, *, engine: str) -> None:
    for key, neutral in DRUM_REFUSED_POST.items():
        if getattr(post, key) != neutral:
            raise OptionError(
                Code.INVALID_PRESET,
                f"[post] {key} = {getattr(post, key)!r} does not apply to drums (engine {engine!r}: "
                f"a note's pitch names the drum); remove it",
            )
    if post.pitch_bends == "mpe":
        raise OptionError(
            Code.INVALID_PRESET,
            f"[post] pitch_bends = 'mpe' does not apply to drums (engine {engine!r}: drum notes are "
            f"on channel 10, unbent); remove it",
        )


def _step(entry, where: str) -> Step:
    if not isinstance(entry, dict) or "step" not in entry:
        raise OptionError(Code.INVALID_OPTION, f"{where}: every [[chain]] table needs step = one of {', '.join(STEPS)}")
    kind = entry["step"]
    if not isinstance(kind, str) or kind not in STEPS:
        raise OptionError(Code.INVALID_OPTION, f"{where}: unknown step {kind!r}; steps are {', '.join(STEPS)}")
    check_table({k: v for k, v in entry.items() if k != "step"}, STEPS[kind].specs, where=f"{where} ({kind})")
    params = {**STEPS[kind].defaults, **{k: v for k, v in entry.items() if k != "step"}}
    if kind == "vst3":
        _check_plugin_parameters(params, f"{where} (vst3)")
    return Step(kind, params)


def _check_plugin_parameters(params: dict, where: str) -> None:
    if not os.path.exists(os.path.expanduser(params["path"])):
        raise OptionError(
            Code.PLUGIN_UNAVAILABLE, f"{where}: plugin {params['path']} does not exist; install it or fix the path"
        )
    for name, value in params["parameters"].items():
        if isinstance(value, (dict, list)):
            raise OptionError(
                Code.INVALID_OPTION, f"{where}: parameter {name!r} must be a number, bool or string, got {value!r}"
            )


# Where presets come from ----------------------------------------------------


def user_presets_dir() -> Path:
    return platformdirs.user_config_path("midibridge") / "presets"


def is_preset_path(name_or_path: str) -> bool:
    """True when a preset is given as a file (a .toml name, or a path with a folder in it), not by its name."""
    return name_or_path.endswith(".toml") or "/" in name_or_path or os.sep in name_or_path


def resolve_preset(preset: Preset | dict | str | os.PathLike | None) -> Preset:
    """A Preset as it is, a preset's table (as a request sends it inline), a name, a path, or None (`default`)."""
    if isinstance(preset, Preset):
        return preset
    if isinstance(preset, dict):
        return Preset.from_dict(preset, where="inline preset", source="request")
    return load_preset(preset)


def load_preset(name_or_path: str | os.PathLike | None = None) -> Preset:
    """The preset called `name_or_path` (user presets shadow built-ins), or read from that .toml path."""
    name_or_path = str(name_or_path or DEFAULT_PRESET)
    path = Path(name_or_path).expanduser()
    if is_preset_path(name_or_path):
        if not path.is_file():
            raise OptionError(Code.UNKNOWN_PRESET, f"preset file {path} does not exist")
        return read_preset(path, source=str(path))
    for source, candidate in _candidates(name_or_path):
        if candidate.is_file():
            return read_preset(candidate, source=source)
    names = ", ".join(sorted(available_presets()))
    raise OptionError(
        Code.UNKNOWN_PRESET,
        f"unknown preset {name_or_path!r}; presets are: {names}. "
        f"`midibridge presets list` shows them; a path to a .toml file works too.",
    )


def read_preset(path: Path, *, source: str) -> Preset:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise OptionError(Code.UNKNOWN_PRESET, f"cannot read preset {path}: {error.strerror}") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise OptionError(Code.INVALID_PRESET, f"{path}: not valid TOML ({error})") from error
    data.setdefault("name", Path(path).stem)
    return Preset.from_dict(data, where=str(path), source=source)


def available_presets() -> dict[str, tuple[str, Path]]:
    """{name: (source, path)} of every preset a name can reach: user presets over built-ins."""
    found = {}
    for source, directory in (("built-in", _builtin_dir()), ("user", user_presets_dir())):
        if directory.is_dir():
            for path in sorted(directory.glob("*.toml")):
                found[path.stem] = (source, path)
    return found


@dataclass(frozen=True)
class PresetListing:
    """One preset a name reaches, as `presets list` shows it: its description, or why its file cannot be used."""

    name: str
    source: str  # "built-in" or "user"
    path: Path
    description: str = ""
    error: ModelError | None = None

    def to_dict(self) -> dict:
        error = {} if self.error is None else {"error": {"code": self.error.code, "message": str(self.error)}}
        return {"name": self.name, "source": self.source, "description": self.description, **error}


def list_presets() -> list[PresetListing]:
    """Every preset a name reaches, by name; a broken file is listed with its error, never hides the others."""
    listed = []
    for name, (source, path) in sorted(available_presets().items()):
        try:
            listed.append(PresetListing(name, source, path, read_preset(path, source=source).description))
        except ModelError as error:
            listed.append(PresetListing(name, source, path, error=error))
    return listed


def _candidates(name: str):
    yield "user", user_presets_dir() / f"{name}.toml"
    yield "built-in", _builtin_dir() / f"{name}.toml"


def _builtin_dir() -> Path:
    return Path(str(importlib.resources.files("midibridge.presets")))


def preset_to_toml(preset: Preset) -> str:
    """The preset as a TOML file that read_preset() reads back to the same preset."""
    data = preset.to_dict()
    lines = [
        f"schema = {SCHEMA}",
        f"name = {_toml(data['name'])}",
        f"description = {_toml(data['description'])}",
        "",
        "[engine]",
        f"name = {_toml(data['engine']['name'])}",
    ]
    for step in data["chain"]:
        lines += ["", "[[chain]]"] + [f"{k} = {_toml(v)}" for k, v in step.items()]
    for table in ("decode", "post"):
        lines += ["", f"[{table}]"] + [f"{k} = {_toml(v)}" for k, v in data[table].items() if v is not None]
    return "\n".join(lines) + "\n"


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return repr(value)


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml(key)
