"""Fault injection for the daemon's tests: put this folder on PYTHONPATH and name a fault in MIDIBRIDGE_TEST_FAULT.

Python imports sitecustomize in every process it starts, so the daemon's real
worker processes (`python -m bridge.worker`) get the fault and nothing else
does. Faults:

- garbled_result: the worker's `result` goes out with a header that is not JSON.
"""

import os
import sys

if os.environ.get("MIDIBRIDGE_TEST_FAULT") == "garbled_result" and "bridge.worker" in sys.orig_argv:
    import zmq

    send_multipart = zmq.Socket.send_multipart

    def garbling(self, frames, *args, **kwargs):
        if len(frames) > 3 and frames[1] == b"result":
            frames = [*frames[:3], b"{not json", *frames[4:]]
        return send_multipart(self, frames, *args, **kwargs)

    zmq.Socket.send_multipart = garbling
