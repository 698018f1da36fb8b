"""Spotify's Basic Pitch (Apache-2.0): its ONNX model on onnxruntime, and its note decoding in numpy.

`constants` holds every signal constant, `inference` runs windows through the
model, `notes` and `bends` are Basic Pitch's decoding, `weights` finds and
installs nmp.onnx, `engine` ties them into midibridge's engine shape. Importing
this package loads nothing heavy; `engine` and `inference` need numpy and
onnxruntime.
"""
