"""Transkun 2.0 (Yan & Duan, ISMIR 2024; MIT): a piano transcriber scoring every (onset, offset) interval per key,
on onnxruntime and numpy, without PyTorch.

`constants` holds every constant of the model, `checkpoint` reads its PyTorch
checkpoint without PyTorch, `graph` writes it as ONNX graphs, `weights`
installs and checks them, `decode` is its semi-CRF Viterbi, `notes` turns
decoded intervals into notes across windows, `engine` ties them into
midibridge's engine shape. Importing this package loads nothing heavy.
"""
