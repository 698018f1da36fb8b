"""Option checks name the field, the bad value and what is allowed."""

import pytest

from midibridge.model.engines.basic_pitch.options import BasicPitchOptions
from midibridge.model.errors import OptionError


@pytest.mark.parametrize(
    "values, message",
    [
        ({"onset_threshold": 1.5}, "onset_threshold must be a number in (0, 1), got 1.5"),
        ({"frame_threshold": "high"}, "frame_threshold must be a number in (0, 1), got 'high'"),
        ({"min_note_ms": -5}, "min_note_ms must be a number in [0, 10000], got -5"),
        ({"melodia_trick": 1}, "melodia_trick must be true or false, got 1"),
        ({"pitch_bends": "sometimes"}, "pitch_bends must be one of 'off', 'on', 'multiple', got 'sometimes'"),
        ({"precision": "int4"}, "precision must be one of 'float32', 'int8', got 'int4'"),
        (
            {"min_frequency_hz": 500.0, "max_frequency_hz": 100.0},
            "min_frequency_hz (500) must be below max_frequency_hz",
        ),
    ],
)
def test_a_bad_value_is_refused_with_the_field_and_its_allowed_range(values, message):
    with pytest.raises(OptionError) as caught:
        BasicPitchOptions(**values)

    assert message in str(caught.value)


def test_an_unknown_key_is_refused_with_the_keys_that_exist():
    with pytest.raises(OptionError, match="unknown key 'onset_thresh'; known keys: onset_threshold"):
        BasicPitchOptions.from_dict({"onset_thresh": 0.4})


def test_defaults_are_basic_pitchs_and_round_trip():
    options = BasicPitchOptions()

    assert (options.onset_threshold, options.frame_threshold, options.min_note_frames) == (0.5, 0.3, 11)
    assert BasicPitchOptions.from_dict(options.to_dict()) == options
