"""Every error PROTOCOL.md lists that a client can provoke, at once or as a job's end, from raw frames alone
(tests/conformance_peer.py): nothing from midibridge."""

import json

import numpy as np
import pytest
from conformance_peer import (  # noqa: F401, F811 (the module's daemon, as pytest fixtures)
    PROTOCOL,
    RATE_HZ,
    ask,
    audio,
    daemon,
    frames,
    job_error,
    receive,
    refused,
    run,
    sock,
    tones,
)

# Errors at once ---------------------------------------------------------------------------------

SAMPLES = {"frame": 0, "sample_rate_hz": RATE_HZ, "channels": 1}
SECOND_OF_SILENCE = np.zeros(RATE_HZ, "<f4").tobytes()


def test_malformed_messages(sock):
    assert refused(sock, [PROTOCOL, b"hello", b"m1"])["code"] == "malformed", "fewer than 4 frames"
    assert refused(sock, [PROTOCOL, b"\xff", b"m2", b"{}"])["code"] == "malformed", "a type that is not UTF-8"
    assert refused(sock, [PROTOCOL, b"hello", b"m3", b"not json"])["code"] == "malformed"
    assert refused(sock, [PROTOCOL, b"hello", b"m4", b"[1, 2]"])["code"] == "malformed", "JSON, not an object"
    assert refused(sock, [PROTOCOL, b"hello", b"m6", b""])["code"] == "malformed", "an empty frame is no object"
    assert refused(sock, [b"foo/2.0", b"hello", b"m5", b"{}"])["code"] == "malformed", "not a midibridge id"
    sock.send([PROTOCOL, b"hello", b"\xff", b"{}"])
    assert receive(sock).header["code"] == "malformed", "an id that is not UTF-8"


def test_another_major_version_is_refused_and_another_minor_is_not(sock):
    assert refused(sock, [b"midibridge/1.0", b"hello", b"v1", b"{}"])["code"] == "version_mismatch"
    assert ask(sock, [b"midibridge/2.7", b"hello", b"v2", b"{}"]).kind == "hello"


def test_unknown_request_types(sock):
    assert refused(sock, frames("transcribe_everything", "u1"))["code"] == "unknown_type"
    assert refused(sock, frames("result", "u2"))["code"] == "unknown_type", "a reply is no request"


@pytest.mark.parametrize(
    "header, buffers, why",
    [
        ({}, [], "region missing"),
        ({"region": {"path": "/a.wav", "start_s": "one"}}, [], "a field of the wrong type"),
        ({"region": {"path": "/a.wav", "start_s": True}}, [], "a boolean is no number"),
        ({"region": {"path": "/a.wav"}, "priority": "urgent"}, [], "an unknown priority"),
        ({"region": {"path": "relative/take.wav"}}, [], "a relative path"),
        ({"region": {"path": "/a.wav", "samples": SAMPLES}}, [SECOND_OF_SILENCE], "both path and samples"),
        ({"region": {"samples": {**SAMPLES, "frame": 1}}}, [SECOND_OF_SILENCE], "a samples frame that is not there"),
        ({"region": {"samples": {"frame": 0, "channels": 1}}}, [SECOND_OF_SILENCE], "sample_rate_hz missing"),
        ({"region": {"path": "/a.wav"}, "allow_truncated": "yes"}, [], "allow_truncated not a boolean"),
        ({"region": {"path": "/a.wav"}, "tempo": 96}, [], "a tempo that is not an object"),
    ],
)
def test_invalid_headers(sock, header, buffers, why):
    assert refused(sock, frames("transcribe", "i1", header, *buffers))["code"] == "invalid_header", why


def test_invalid_headers_of_the_other_requests(sock):
    assert refused(sock, frames("batch", "i2", {"regions": []}))["code"] == "invalid_header", "an empty batch"
    assert refused(sock, frames("status", "i3", {"job_ids": [7]}))["code"] == "invalid_header"
    assert refused(sock, frames("cancel", "i4"))["code"] == "invalid_header", "job_ids is required"
    assert refused(sock, frames("fetch", "i5", {"job_id": 7}))["code"] == "invalid_header"


@pytest.mark.parametrize("not_finite", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
@pytest.mark.parametrize("field", [b"start_s", b"my_own_note"])
def test_numbers_that_are_not_finite_are_invalid_headers_in_any_field(sock, field, not_finite):
    header = b'{"region": {"path": "/a.wav", "%s": %s}}' % (field, not_finite)
    assert refused(sock, [PROTOCOL, b"transcribe", b"n1", header])["code"] == "invalid_header"


@pytest.mark.parametrize(
    "samples, buffer",
    [
        (SAMPLES, b""),
        (SAMPLES, b"\0" * 6),
        ({**SAMPLES, "channels": 2}, b"\0" * 12),
        ({**SAMPLES, "channels": 0}, SECOND_OF_SILENCE),
        ({**SAMPLES, "channels": 65}, b"\0" * 4 * 65),
    ],
)
def test_invalid_samples(sock, samples, buffer):
    assert (
        refused(sock, frames("transcribe", "x1", {"region": {"samples": samples}}, buffer))["code"] == "invalid_samples"
    )


def test_buffer_0_is_frame_4_and_samples_frame_counts_buffers(sock):
    melody = tones([(64, 0.2, 0.8)], 1.0).astype("<f4").tobytes()
    end = run(sock, "x2", {"region": {"samples": {**SAMPLES, "frame": 1}}}, b"not the samples", melody)
    assert end.kind == "result" and [n["pitch"] for n in json.loads(end.buffers[1])["notes"]][:1] == [64]


@pytest.mark.parametrize("rate_hz", [999, 768_001])
def test_inline_samples_at_an_impossible_rate(sock, rate_hz):
    header = {"region": {"samples": {**SAMPLES, "sample_rate_hz": rate_hz}}}
    assert refused(sock, frames("transcribe", "x3", header, SECOND_OF_SILENCE))["code"] == "invalid_sample_rate"


@pytest.mark.parametrize(
    "region, code",
    [
        ({"start_s": -1.0}, "region_outside_source"),
        ({"position_s": -0.5}, "region_outside_source"),
        ({"duration_s": 0}, "region_empty"),
        ({"duration_s": -2.0}, "region_empty"),
        ({"duration_s": 4 * 3600 + 1}, "too_large"),
    ],
)
def test_regions_refused_at_once(sock, region, code):
    assert refused(sock, frames("transcribe", "g1", {"region": {"path": "/a.wav", **region}}))["code"] == code


def test_a_header_over_1_mib_is_too_large(sock):
    header = {"region": {"path": "/a.wav"}, "padding": "x" * (1 << 20)}
    assert refused(sock, frames("transcribe", "t1", header))["code"] == "too_large"


@pytest.mark.parametrize(
    "options, code, names",
    [
        ({"preset": "no-such-preset"}, "unknown_preset", "no-such-preset"),
        ({"preset": {"schema": 1, "chain": [{"step": "teleport"}]}}, "invalid_preset", "teleport"),
        ({"tempo": {"bpm": 0}}, "invalid_option", "bpm"),
        ({"tempo": {"bpm": 1001}}, "invalid_option", "bpm"),
        ({"tempo": {"swing": 0.5}}, "invalid_option", "swing"),
        ({"tempo": {"bpm": "fast"}}, "invalid_option", "bpm"),
        ({"region": {"path": "/a.wav", "tempo": {"beats_per_bar": None}}}, "invalid_option", "beats_per_bar"),
    ],
)
def test_presets_and_tempos_that_cannot_be_used(sock, options, code, names):
    error = refused(sock, frames("transcribe", "o1", {"region": {"path": "/a.wav"}, **options}))
    assert error["code"] == code and names in error["message"]


# Errors as a job's end ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "region, code",
    [
        ({"start_s": 7.0}, "region_outside_source"),
        ({"start_s": 5.0, "duration_s": 2.0}, "region_outside_source"),
        ({"duration_s": 1e-6}, "region_empty"),
    ],
)
def test_regions_that_only_the_audio_shows_wrong_end_their_job(sock, audio, region, code):
    assert job_error(sock, "j1", {"region": {"path": str(audio["melody"]), **region}})["code"] == code


def test_audio_problems_end_their_job(sock, audio):
    def code_for(region, **options):
        return job_error(sock, "a1", {"region": region, **options})["code"]

    assert code_for({"path": "/nowhere/take.wav"}) == "audio_not_found"
    assert code_for({"path": str(audio["garbage"])}) == "audio_unreadable"
    assert code_for({"path": str(audio["too_fast"])}) == "invalid_sample_rate", "a file at 800 kHz"
    assert code_for({"path": str(audio["silent_nothing"])}) == "region_empty", "a source without audio"
    assert code_for({"path": str(audio["cut"])}) == "audio_truncated"
    nan = np.full(RATE_HZ, np.nan, "<f4").tobytes()
    assert job_error(sock, "a2", {"region": {"samples": SAMPLES}}, nan)["code"] == "audio_not_finite"


def test_allow_truncated_transcribes_what_a_cut_file_holds_and_says_where_it_stops(sock, audio):
    end = run(sock, "a3", {"region": {"path": str(audio["cut"])}, "allow_truncated": True})
    clip = json.loads(end.buffers[1])
    assert end.kind == "result" and 0 < clip["truncated_at_s"] < 24.0 and clip["notes"]
