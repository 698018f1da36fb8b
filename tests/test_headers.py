"""One spec for everything that crosses a boundary: wire headers, tempos and preset files are checked by one table
check (model.options.check_table), so a wrong field is named in the same words wherever it is written."""

import pytest

from midibridge.bridge import headers as h
from midibridge.bridge.protocol import Message, ProtocolError
from midibridge.model.clip import Tempo
from midibridge.model.errors import OptionError
from midibridge.model.presets import load_preset


def refusal(header: dict, kind: str = "transcribe", buffers=()) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        h.check_request(Message(kind, "r1", header, list(buffers)))
    return caught.value


def test_a_wrong_field_is_named_with_what_is_allowed_and_what_came_in_a_header_a_tempo_and_a_preset(tmp_path):
    preset = tmp_path / "mine.toml"
    preset.write_text('schema = 2\n[post]\nmerge_gap_ms = "one"\n')
    header = refusal({"region": {"path": "/a.wav", "start_s": "one"}})
    with pytest.raises(OptionError) as tempo:
        Tempo.from_dict({"bpm": "one"})
    with pytest.raises(OptionError) as post:
        load_preset(preset)

    assert (header.code, str(header)) == ("invalid_header", "transcribe region: start_s must be a number, got 'one'")
    assert str(tempo.value) == "host tempo: bpm must be a number in [3.57628, 1000], got 'one'"
    assert str(post.value) == f"{preset}: [post]: merge_gap_ms must be a number in [0, 2000], got 'one'"


@pytest.mark.parametrize(
    "header, kind, message",
    [
        ({}, "transcribe", "transcribe: region is required (a table)"),
        ({"regions": [{"path": "/a.wav"}, "b.wav"]}, "batch", "batch: regions[1] must be a table, got 'b.wav'"),
        (
            {"region": {"samples": {"frame": 0, "channels": 1}}},
            "transcribe",
            "transcribe region samples: sample_rate_hz is required (a number)",
        ),
        (
            {"region": {"path": "/a.wav"}, "priority": "urgent"},
            "transcribe",
            "transcribe: priority must be one of 'interactive', 'batch', got 'urgent'",
        ),
        (
            {"region": {"path": "/a.wav"}, "preset": 7},
            "transcribe",
            "transcribe: preset must be a string or a table, got 7",
        ),
        ({"job_ids": ["a-1", 7]}, "status", "status: job_ids[1] must be a string, got 7"),
    ],
)
def test_every_header_field_is_checked_by_its_table_down_to_regions_samples_and_list_items(header, kind, message):
    refused = refusal(header, kind)
    assert (refused.code, str(refused)) == ("invalid_header", message)


def test_a_count_on_the_wire_is_a_json_integer_while_a_preset_takes_a_whole_float(tmp_path):
    preset = tmp_path / "fixed.toml"
    preset.write_text('schema = 2\n[post]\nvelocity = "fixed"\nfixed_velocity = 100.0\n')
    refused = refusal(
        {"region": {"samples": {"frame": 0.0, "sample_rate_hz": 44100, "channels": 1}}}, buffers=[b"\0" * 4]
    )

    assert str(refused) == "transcribe region samples: frame must be a whole number, got 0.0"
    assert load_preset(preset).post.fixed_velocity == 100


def test_a_huge_bad_value_is_quoted_short_so_that_the_error_reply_stays_a_small_header():
    refused = refusal({"region": {"path": "/a.wav", "duration_s": "x" * (1 << 19)}})
    assert str(refused).startswith("transcribe region: duration_s must be a number (or unset), got 'xxx")
    assert len(str(refused)) < 200


def test_fields_a_table_does_not_name_pass_as_a_newer_minor_version_may_add_them():
    h.check_request(Message("transcribe", "r1", {"region": {"path": "/a.wav", "colour": "red"}, "urgency": 3}))


@pytest.mark.parametrize(
    "text, words",
    [
        ("schema = 2\ncolour = 1", "mine.toml: unknown key 'colour'; known keys: schema, name, description, engine"),
        ("schema = 2\n[engine]\ncolour = 1", "mine.toml: [engine]: unknown key 'colour'; known keys: name"),
        (
            'schema = 2\n[[chain]]\nstep = "gain"\ngain_db = 1.0\ncolour = 1',
            "mine.toml: chain step 1 (gain): unknown key 'colour'; known keys: gain_db",
        ),
        ("schema = 2\n[decode]\ncolour = 1", "mine.toml: [decode]: unknown key 'colour'; known keys: onset_threshold"),
        ("schema = 2\n[post]\ncolour = 1", "mine.toml: [post]: unknown key 'colour'; known keys: velocity"),
    ],
)
def test_every_table_of_a_preset_file_refuses_an_unknown_key_in_the_same_words(tmp_path, text, words):
    preset = tmp_path / "mine.toml"
    preset.write_text(text)
    with pytest.raises(OptionError) as caught:
        load_preset(preset)
    assert words in str(caught.value) and caught.value.code == "invalid_preset"


@pytest.mark.parametrize(
    "shape, table",
    [
        (h.WireRegion, h.REGION),
        (h.WireSamples, h.SAMPLES),
        (h.ErrorHeader, h.ERROR_HEADER),
        (h.JobSummary, h.JOB_SUMMARY),
    ],
)
def test_each_typed_shape_the_code_builds_has_the_fields_of_its_table(shape, table):
    assert shape.__required_keys__ == {name for name, spec in table.items() if spec.required}
    assert shape.__optional_keys__ == {name for name, spec in table.items() if not spec.required}
