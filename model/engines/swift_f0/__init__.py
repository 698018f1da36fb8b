"""SwiftF0 (MIT) as a monophonic engine: its pitch and confidence on onnxruntime, turned into notes as a musician
hears them.

`constants` holds every signal constant, `options` the [decode] table
(standard library only), `weights` finds and checks model.onnx, `features`
streams 16 kHz audio into per-frame features, `notes` turns frames into notes
with continuous pitch bends, `engine` ties them into midibridge's engine shape.
Importing this package loads nothing heavy.
"""
