"""Drums as a midibridge engine: mono audio at 22.05 kHz in, one short General MIDI drum note per hit out.

`constants` holds every signal constant, `options` the [decode] table
(standard library only), `features` the log-mel frames and their streaming,
`network` the checked weights and the small networks' numpy forward pass,
`nmf` the kick's partially fixed NMF, `detect` the peak picking per class,
`engine` ties them into midibridge's engine shape. Importing this package
loads nothing heavy. How the weights were made: training/README.md.
"""
