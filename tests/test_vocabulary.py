"""One vocabulary: every error code and progress stage is a word of model/vocabulary.py, documented in
bridge/PROTOCOL.md both ways, held to by the worker dialect, and sent as the same text as ever; every error is a
MidibridgeError built (code, message), and the command line says each the same way."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import midibridge
from midibridge.bridge import headers as h
from midibridge.bridge import protocol as p
from midibridge.bridge.daemon import DaemonError
from midibridge.model.errors import AudioError, Cancelled, MidibridgeError, ModelError, OptionError, WeightsError
from midibridge.model.presets import load_preset
from midibridge.model.vocabulary import Code, JobState, Priority, Stage
from midibridge.plugin_host.ardour_adapter import ArdourError
from midibridge.plugin_host.results import ClientError, DaemonUnavailable

ROOT = Path(midibridge.__file__).parent
SHIPPED = ("bridge", "model", "plugin_host")


def protocol_md_words(first_column: str) -> list[str]:
    """The `words` in the first column of every bridge/PROTOCOL.md table whose header's first cell is `first_column`."""
    words, header = [], None
    for line in (ROOT / "bridge" / "PROTOCOL.md").read_text().splitlines():
        if not line.startswith("|"):
            header = None
            continue
        first = line.strip("|").split("|")[0].strip()
        if header is None:
            header = first
        elif header == first_column and set(first) - set("- "):
            words += re.findall(r"`([^`]+)`", first)
    return words


def test_every_error_code_is_documented_in_protocol_md_and_every_code_documented_there_is_one():
    documented = protocol_md_words("code")

    assert sorted(set(Code) - set(documented)) == [], "codes in model/vocabulary.py that PROTOCOL.md does not list"
    assert sorted(set(documented) - set(Code)) == [], "codes PROTOCOL.md lists that model/vocabulary.py does not have"
    assert len(documented) == len(set(documented)), "a code PROTOCOL.md lists twice"


def test_the_progress_stages_are_protocol_md_s_stage_table_in_order():
    assert protocol_md_words("stage") == list(Stage)


def error_classes(trees: list[ast.AST]) -> set[str]:
    """The names of MidibridgeError and every class the shipped code derives from it that is built (code, message):
    not those that are one code, whose __init__ takes the message alone."""
    classes = [node for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    names, grown = {"MidibridgeError"}, True
    while grown:
        more = {c.name for c in classes if {getattr(b, "id", getattr(b, "attr", "")) for b in c.bases} & names}
        names, grown = names | more, bool(more - names)
    one_code = {
        c.name
        for c in classes
        if c.name in names
        for f in c.body
        if isinstance(f, ast.FunctionDef) and f.name == "__init__" and f.args.args[1].arg == "message"
    }
    return names - one_code


def literal_words(tree: ast.AST, errors: set[str]) -> list[tuple[int, str, str]]:
    """(line, "code" or "stage", text) of every string literal written where a code or a stage goes: a midibridge
    error's first argument or any code=/error_code=, an error header's code, a progress call's stage."""
    found = []
    for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
        name = getattr(call.func, "id", getattr(call.func, "attr", ""))
        places = [k.value for k in call.keywords if k.arg in ("code", "error_code")]
        if name in errors or name in ("error_header", "on_progress"):
            places += call.args[:1]
        for place in places:
            if isinstance(place, ast.Constant) and isinstance(place.value, str):
                found.append((place.lineno, "stage" if name == "on_progress" else "code", place.value))
    return found


def test_codes_and_stages_are_written_as_words_of_the_vocabulary_not_as_strings():
    trees = {
        path.relative_to(ROOT).as_posix(): ast.parse(path.read_text())
        for path in sorted(p for folder in SHIPPED for p in (ROOT / folder).rglob("*.py"))
    }
    errors = error_classes(list(trees.values()))
    literals = {name: literal_words(tree, errors) for name, tree in trees.items()}

    unknown = [
        (name, line, text)
        for name, found in literals.items()
        for line, kind, text in found
        if text not in set(Code if kind == "code" else Stage)
    ]
    assert unknown == [], "a code or stage that model/vocabulary.py does not have (so PROTOCOL.md does not either)"
    assert {name for name, found in literals.items() if found} == set(), "codes and stages written as strings"


@pytest.mark.parametrize(
    "kind, header, field",
    [
        (p.W_PROGRESS, {"stage": "thinking", "fraction": 0.5}, "stage"),
        (p.W_ERROR, {"code": "oops", "message": "something"}, "code"),
    ],
)
def test_a_worker_that_says_a_stage_or_code_outside_the_vocabulary_is_refused(kind, header, field):
    with pytest.raises(p.ProtocolError) as refused:
        h.check_worker_message(p.Message(kind, "job-1", header))
    h.check_worker_message(p.Message(kind, "job-1", {**header, field: Stage.INFER if field == "stage" else "busy"}))

    assert refused.value.code == Code.INVALID_HEADER
    assert str(refused.value).startswith(f"worker {kind}: {field} must be one of '")


def test_the_words_travel_as_the_same_text_on_the_wire_in_json_and_in_messages():
    worded = {
        "code": Code.BUSY,
        "stage": Stage.INFER,
        "priority": Priority.BATCH,
        "counts": {JobState.QUEUED: 1, JobState.DONE: 2},
    }
    plain = {"code": "busy", "stage": "infer", "priority": "batch", "counts": {"queued": 1, "done": 2}}

    assert p.encode(p.ERROR, "r1", worded) == p.encode(p.ERROR, "r1", plain)
    assert json.dumps(worded, indent=1) == json.dumps(plain, indent=1)  # index.json's form
    percent = "[%s] %s" % (Code.AUDIO_NOT_FOUND, Stage.QUEUED)  # noqa: UP031 (as logging formats them)
    assert f"[{Code.AUDIO_NOT_FOUND}] {Stage.QUEUED}" == "[audio_not_found] queued" == percent
    assert Code("busy") is Code.BUSY and Priority("interactive") is Priority.INTERACTIVE


@pytest.mark.parametrize(
    "kind",
    [ModelError, AudioError, WeightsError, OptionError, p.BridgeError, p.ProtocolError, ClientError, ArdourError],
)
def test_every_error_is_a_midibridge_error_built_code_first(kind):
    error = kind(Code.INTERNAL, "what went wrong, and the fix", job_id="j-1")

    assert isinstance(error, MidibridgeError) and isinstance(error, midibridge.MidibridgeError)
    assert (error.code, str(error), error.job_id) == ("internal", "what went wrong, and the fix", "j-1")


def test_an_error_that_is_one_code_takes_only_its_message():
    assert [kind("why").code for kind in (Cancelled, DaemonUnavailable, DaemonError)] == [
        "cancelled",
        "daemon_unavailable",
        "cannot_serve",
    ]


def test_one_except_catches_any_midibridge_error_with_its_code():
    with pytest.raises(MidibridgeError) as caught:
        load_preset("no-such-preset")
    assert caught.value.code == Code.UNKNOWN_PRESET


def test_a_daemon_that_cannot_serve_is_said_as_every_other_error_one_line_exit_1():
    endpoint = "tcp://0.0.0.0:5597"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "midibridge"), "serve", "--endpoint", endpoint],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(
        f"midibridge: error [cannot_serve]: {endpoint} can be reached from other machines: serve it with --curve"
    )
