"""midibridge's benchmarks: scripts that print figures, run from the repository (`make bench`), never installed.

    python -m benchmarks.transcription   speed and accuracy of the core against Basic Pitch
    python -m benchmarks.presets         each built-in preset against `default`, per case
    python -m benchmarks.daemon          the daemon: latency, throughput, priority, memory

Each skips cleanly when ../shared is absent.
"""
