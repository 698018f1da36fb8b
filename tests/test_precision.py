"""int8 as a preset's choice: asked for by name, refused when misspelt, a clip from it, never mixed with float32's."""

import onnx
import pytest
from conftest import PIANO_LINE, matches

from midibridge.model.engines.basic_pitch.graph import cache_dir, graph_parts
from midibridge.model.engines.basic_pitch.inference import segments
from midibridge.model.engines.basic_pitch.options import BasicPitchOptions
from midibridge.model.engines.basic_pitch.quantise import QUANTISE_VERSION, calibration_audio, int8_back
from midibridge.model.engines.basic_pitch.rewrites import STACK_PRODUCT_BLOCKS, STACK_PRODUCTS
from midibridge.model.errors import OptionError
from midibridge.model.fingerprint import fingerprint
from midibridge.model.presets import Preset
from midibridge.model.region import Region

INT8 = Preset(name="fast", decode=BasicPitchOptions(precision="int8"))


def test_float32_stays_the_default_and_int8_is_asked_for_by_name():
    assert BasicPitchOptions().precision == "float32"
    assert Preset.from_dict({"schema": 2, "name": "fast", "decode": {"precision": "int8"}}) == INT8


def test_a_precision_midibridge_does_not_offer_is_refused_with_the_ones_it_does():
    with pytest.raises(OptionError, match="precision must be one of 'float32', 'int8', got 'float16'"):
        Preset.from_dict({"schema": 2, "name": "fast", "decode": {"precision": "float16"}})


def test_an_int8_preset_still_finds_every_note_of_a_piano_line(transcriber, piano_line):
    region = Region.from_file(piano_line)

    clip = transcriber.transcribe(region, preset=INT8)

    assert len(matches(list(clip.notes), PIANO_LINE)) == len(PIANO_LINE)
    assert transcriber.engine_for().model_for("int8") is not transcriber.engine_for().model
    assert transcriber.transcribe(region) == transcriber.transcribe(region, preset=Preset(name="fast"))


def test_results_at_int8_are_never_taken_for_float32_ones():
    def key(preset: Preset):
        found = fingerprint("ab" * 32, start_s=0.0, duration_s=None, position_s=0.0, tempo={}, preset=preset.to_dict())
        return found.to_dict()["preset"], found.key()

    float32 = key(Preset(name="fast"))
    int8 = key(INT8)

    assert float32[0]["sha256"] != int8[0]["sha256"] and float32[1] != int8[1]


def test_only_the_stacks_products_are_quantised_and_a_damaged_cached_graph_is_made_again(
    transcriber, tmp_path, monkeypatch
):
    model = transcriber.engine_for().model
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    back = graph_parts(model.path).back
    calibrated = []

    def calibration():
        calibrated.append(True)
        return segments(map(model.features, model.batches([calibration_audio(10.0)])))

    first = int8_back(back, calibration)
    (cache_dir() / f"int8-q{QUANTISE_VERSION}" / "back.onnx").write_bytes(first[:1000])

    assert int8_back(back, calibration) == first and len(calibrated) == 2, "damaged: quantised again, the same"
    assert int8_back(back, calibration) == first and len(calibrated) == 2, "intact: read from the cache"
    graph = onnx.load_from_string(first)
    dequantised = {node.output[0] for node in graph.graph.node if node.op_type == "DequantizeLinear"}
    products = [node for node in graph.graph.node if node.op_type in ("Conv", "MatMul")]
    quantised = {node.name for node in products if dequantised.intersection(node.input)}
    assert quantised == {f"{STACK_PRODUCTS}/product{block}" for block in range(STACK_PRODUCT_BLOCKS)}
