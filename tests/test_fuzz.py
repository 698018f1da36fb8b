"""Protocol fuzzing against a live daemon: random and mutated frames, every one answered, the daemon unmoved.

hypothesis makes the messages: random frames, and valid requests mutated
(frames dropped, doubled, cut, replaced; wrong versions and types; headers of
random JSON, wrong types, huge numbers; samples buffers cut short). Each is
sent on a real DEALER; the reply carrying its request id must come. After
every example the daemon still answers hello, and now and then a well-formed
job must still succeed. `pytest --long` sends 10,000 messages.
"""

import json
import time

import pytest
from conftest import Note, synthesize, write_audio
from daemon_helpers import DaemonProcess
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from midibridge.bridge import protocol as p
from midibridge.model.region import Region

MESSAGES_PER_EXAMPLE = 10


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz")
    running = DaemonProcess(home, "--queue", "256", workers=2)
    running.audio = write_audio(
        home / "short.wav", synthesize([Note(64, 0.05, 0.4, 100)], sample_rate_hz=22050, length_s=0.5), 22050
    )
    yield running
    assert running.process.poll() is None, "the daemon survived the fuzzing"
    running.stop()


@pytest.fixture(scope="module")
def sender(daemon):
    sock = daemon.raw()
    yield sock
    sock.close()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@st.composite
def valid_request(draw, audio: str):
    region = draw(
        st.sampled_from(
            [
                {"path": audio},
                {"path": audio, "start_s": 0.1, "duration_s": 0.3, "position_s": 7.5},
                {"path": "/nowhere.wav"},
                {"samples": {"frame": 0, "sample_rate_hz": 22050, "channels": 1}},
            ]
        )
    )
    buffers = [b"\0" * 4 * 2205] if "samples" in region else []
    kind, header = draw(
        st.sampled_from(
            [
                (p.HELLO, {}),
                (p.STATUS, {"job_ids": ["x"]}),
                (p.PRESETS, {}),
                (p.CANCEL, {"job_ids": ["nope"]}),
                (p.FETCH, {"job_id": "nope"}),
                (p.TRANSCRIBE, {"region": region, "preset": "piano"}),
                (p.BATCH, {"regions": [region, region], "tempo": {"bpm": 90}}),
            ]
        )
    )
    return [p.PROTOCOL_ID, kind.encode(), b"", json.dumps(header).encode(), *buffers]


@st.composite
def mutated(draw, audio: str):
    frames = draw(valid_request(audio))
    for _ in range(draw(st.integers(0, 3))):
        mutation = draw(
            st.sampled_from(["drop", "double", "cut", "bytes", "version", "type", "json", "field", "buffer"])
        )
        index = draw(st.integers(0, len(frames) - 1))
        if mutation == "drop" and len(frames) > 1:
            del frames[index]
        elif mutation == "double":
            frames.insert(index, frames[index])
        elif mutation == "cut":
            frames[index] = frames[index][: draw(st.integers(0, max(len(frames[index]) - 1, 0)))]
        elif mutation == "bytes":
            frames[index] = draw(st.binary(max_size=40))
        elif mutation == "version":
            frames[0] = draw(
                st.sampled_from(
                    [
                        b"midibridge/3.0",
                        b"midibridge/0.9",
                        b"midibridge/",
                        b"midibridge/x",
                        b"MIDIBRIDGE/1.0",
                        b"midibridge-worker/2.0",
                    ]
                )
            )
        elif mutation == "type" and len(frames) > 1:
            # Not "shutdown": from a local peer that is a legitimate order the daemon obeys.
            frames[1] = draw(
                st.sampled_from([b"", b"result", b"ready", b"heartbeat", b"\xff"])
                | st.text(max_size=10).filter(lambda t: t != "shutdown").map(str.encode)
            )
        elif mutation == "json" and len(frames) > 3:
            frames[3] = json.dumps(draw(JSON)).encode()
        elif mutation == "field" and len(frames) > 3:
            try:
                header = json.loads(frames[3])
            except ValueError:
                continue
            if isinstance(header, dict):
                target = header.get("region", header) if isinstance(header.get("region"), dict) else header
                target[
                    draw(
                        st.sampled_from(
                            [
                                "start_s",
                                "duration_s",
                                "position_s",
                                "path",
                                "job_ids",
                                "tempo",
                                "preset",
                                "samples",
                                "regions",
                            ]
                        )
                    )
                ] = draw(JSON | st.sampled_from([1e308, -1e308, 2**64, -1, 0, 10**9]))
                frames[3] = json.dumps(header).encode()
        elif mutation == "buffer":
            frames.append(draw(st.binary(max_size=4099)))
    return frames


def expected_request_id(frames) -> str:
    """The request id the daemon will answer with: frame 2 as text, or "" when there is none."""
    try:
        return frames[2].decode() if len(frames) > 2 else ""
    except UnicodeDecodeError:
        return ""


def answered(sock, request_id: str, sent=None, timeout_s: float = 10.0) -> p.Message:
    deadline = time.monotonic() + timeout_s
    while sock.poll(max(deadline - time.monotonic(), 0) * 1000):
        message = p.decode(sock.recv_multipart())
        if message.request_id == request_id and message.kind != p.PROGRESS:
            return message
    raise AssertionError(f"no answer to request {request_id!r}, sent as {sent!r}")


def fuzz(daemon, sock, figures, messages):
    audio = str(daemon.audio)
    counter = {"n": 0}

    # No shrinking: against a live daemon it is slow, and the failing frames are in the message anyway.
    @settings(
        max_examples=messages // MESSAGES_PER_EXAMPLE,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(
        st.lists(
            st.lists(st.binary(max_size=64), min_size=1, max_size=8) | mutated(audio),
            min_size=MESSAGES_PER_EXAMPLE,
            max_size=MESSAGES_PER_EXAMPLE,
        )
    )
    def examples(batch):
        for frames in batch:
            counter["n"] += 1
            request_id = f"f{counter['n']}"
            if len(frames) > 2:
                frames[2] = request_id.encode()
            sock.send_multipart(frames)
            reply = answered(sock, expected_request_id(frames), frames)
            assert reply.kind in (p.ERROR, p.ACCEPTED, p.HELLO, p.STATUS, p.PRESETS, p.CANCEL, p.RESULT)
        sock.send_multipart(p.encode(p.HELLO, "alive"))
        assert answered(sock, "alive").kind == p.HELLO
        if counter["n"] % 200 < MESSAGES_PER_EXAMPLE:
            with daemon.client(timeout_s=30.0) as client:
                assert client.transcribe(Region.from_file(daemon.audio)).clip.notes, "well-formed jobs still work"

    examples()
    figures["messages fuzzed"] = figures.get("messages fuzzed", 0) + counter["n"]


def test_random_and_mutated_messages_are_each_answered_and_the_daemon_keeps_serving(daemon, sender, figures, long_run):
    fuzz(daemon, sender, figures, 10_000 if long_run else 600)

    with daemon.client() as client:
        status = client.status()
    assert status["workers_replaced"] == 0
    figures["daemon crashes"] = 0


def test_an_oversized_frame_costs_only_its_sender_the_connection(daemon, figures):
    greedy = daemon.raw()
    greedy.send_multipart([p.PROTOCOL_ID, b"hello", b"big", b"{}", b"\0" * (p.MAX_FRAME_BYTES + 1)])
    time.sleep(0.5)
    greedy.close()
    figures["messages fuzzed"] = figures.get("messages fuzzed", 0) + 1

    with daemon.client() as client:
        assert client.hello()["workers"] == 2


@settings(max_examples=300, deadline=None)
@given(
    preset=JSON
    | st.fixed_dictionaries(
        {"schema": st.just(1)},
        optional={
            "chain": st.lists(
                JSON
                | st.fixed_dictionaries(
                    {"step": JSON | st.sampled_from(["highpass", "gain", "vst3"])},
                    optional={"cutoff_hz": JSON, "gain_db": JSON, "path": JSON},
                )
            ),
            "decode": JSON,
            "post": JSON,
            "name": JSON,
        },
    ),
    tempo=JSON,
)
def test_any_json_as_a_preset_or_a_tempo_is_taken_or_refused_with_a_code(preset, tempo):
    from midibridge.model.clip import Tempo
    from midibridge.model.errors import OptionError
    from midibridge.model.presets import Preset

    for build in (
        lambda: Preset.from_dict(preset),
        lambda: Tempo.from_dict(tempo) if isinstance(tempo, dict) else None,
    ):
        try:
            build()
        except OptionError as error:
            assert error.code in ("invalid_preset", "invalid_option", "plugin_unavailable") and str(error)
