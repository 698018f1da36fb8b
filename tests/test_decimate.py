"""A 44.1 kHz or 48 kHz recording brought down to a model's rate by a whole factor (model.decimate): the same samples
whatever the block size a host streams in, aligned with the input, the band the model reads kept and what would
fold into it removed."""

import numpy as np
import pytest

from midibridge.model.audio import resample
from midibridge.model.decimate import Decimator


def tone(frequency_hz: float, rate_hz: int, seconds: float = 1.0) -> np.ndarray:
    return np.sin(2 * np.pi * frequency_hz * np.arange(int(rate_hz * seconds)) / rate_hz).astype(np.float32)


def streamed(decimator: Decimator, audio: np.ndarray, block: int) -> np.ndarray:
    out = [decimator.process(audio[np.newaxis, i : i + block])[0] for i in range(0, audio.shape[0], block)]
    return np.concatenate([*out, decimator.process()[0]])


@pytest.mark.parametrize("block", [1, 256, 777, 88200])
def test_any_block_size_gives_the_same_samples_as_one_block(block):
    audio = np.random.default_rng(0).standard_normal(44101).astype(np.float32)

    one_block = streamed(Decimator(2), audio, audio.shape[0])

    # Equal to float32 rounding: a product of one row sums in another order than one of many.
    assert np.allclose(streamed(Decimator(2), audio, block), one_block, rtol=0, atol=1e-6)


@pytest.mark.parametrize("from_hz, to_hz", [(44100, 22050), (48000, 16000), (88200, 22050)])
def test_a_tone_the_model_hears_comes_through_in_time_and_one_above_is_gone(from_hz, to_hz):
    down = list(resample(iter([tone(440, from_hz), tone(440, from_hz)[:1001]]), from_hz=from_hz, to_hz=to_hz))
    kept = np.concatenate(down)
    aliased = np.concatenate(list(resample(iter([tone(0.7 * from_hz / 2, from_hz)]), from_hz=from_hz, to_hz=to_hz)))

    factor = from_hz // to_hz
    assert kept.shape[0] == -(-(from_hz + 1001) // factor), "every input sample accounted for, none added"
    inner = slice(100, to_hz - 100)  # away from the zeros before and after the stream
    assert np.abs(kept[inner] - tone(440, to_hz)[inner]).max() < 1e-3, "sample j is input sample j x factor"
    assert np.abs(aliased[inner]).max() < 1e-3, "above the new Nyquist frequency nothing folds back"
