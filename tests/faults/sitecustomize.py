"""Fault injection for the daemon's tests: put this folder on PYTHONPATH and name a fault in MIDIBRIDGE_TEST_FAULT.

Python imports sitecustomize in every process it starts, so the daemon's real
worker processes (`python -m midibridge.bridge.worker`) get the fault and nothing else
does. Faults:

- garbled_result: the worker's `result` goes out with a header that is not JSON.
- scripted:PATH: when the worker answers a job (`result` or `error`) and PATH
  exists, it takes the file (JSON: {"before": [message…], "after": [message…]},
  a message a list of frames as latin-1 text, "{job}" standing for the job's
  id) and sends those messages on its own socket just before and after its
  real answer. Each file is used once, so the jobs between scripts run clean.
- hold_on_node:DIR, for a Ray cluster's nodes (their worker processes): while
  DIR/hold exists, naming a node's IP address, the first region that starts on
  that node writes its path to DIR/held and then hangs (until its node is
  killed), and regions on other nodes wait for DIR/held before they run: that
  node is known to hold a region when it is killed, whatever the timing.
  While DIR/refuse exists, naming an engine, no node can load that engine:
  its weights are missing there (model_missing).
"""

import json
import os
import sys
import time

FAULT = os.environ.get("MIDIBRIDGE_TEST_FAULT", "")

if FAULT and "midibridge.bridge.worker" in sys.orig_argv:
    import zmq

    send_multipart = zmq.Socket.send_multipart

    def answers(frames) -> bool:
        return len(frames) > 3 and frames[1] in (b"result", b"error")

    if FAULT == "garbled_result":

        def garbling(self, frames, *args, **kwargs):
            if answers(frames) and frames[1] == b"result":
                frames = [*frames[:3], b"{not json", *frames[4:]]
            return send_multipart(self, frames, *args, **kwargs)

        zmq.Socket.send_multipart = garbling

    elif FAULT.startswith("scripted:"):
        script = FAULT.removeprefix("scripted:")

        def send_scripted(sock, messages, job_id: bytes) -> None:
            for message in messages:
                send_multipart(sock, [job_id if f == "{job}" else f.encode("latin-1") for f in message])

        def take_plan():
            taken = f"{script}.{os.getpid()}"
            try:
                os.replace(script, taken)  # claimed whole, once
            except FileNotFoundError:
                return None
            with open(taken) as file:
                plan = json.load(file)
            os.unlink(taken)
            return plan

        def scripted(self, frames, *args, **kwargs):
            plan = take_plan() if answers(frames) else None
            if plan is None:
                return send_multipart(self, frames, *args, **kwargs)
            send_scripted(self, plan["before"], bytes(frames[2]))
            send_multipart(self, frames, *args, **kwargs)
            send_scripted(self, plan["after"], bytes(frames[2]))

        zmq.Socket.send_multipart = scripted

if FAULT.startswith("hold_on_node:") and any(arg.endswith("default_worker.py") for arg in sys.orig_argv):
    import importlib.abc
    import importlib.util
    from pathlib import Path

    control = Path(FAULT.removeprefix("hold_on_node:"))

    def held_convert(convert):
        def convert_or_hold(self, region, *args, **kwargs):
            import ray

            try:
                target = (control / "hold").read_text().strip()
            except FileNotFoundError:
                return convert(self, region, *args, **kwargs)
            if ray.util.get_node_ip_address() == target:
                (control / "held.partial").write_text(str(region.path))
                os.replace(control / "held.partial", control / "held")
                time.sleep(300)  # until the test kills this node
            deadline = time.monotonic() + 60
            while (control / "hold").exists() and not (control / "held").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            return convert(self, region, *args, **kwargs)

        return convert_or_hold

    def refusing(engine_for):
        def engine_for_unless_refused(self, name, *args, **kwargs):
            try:
                refused = (control / "refuse").read_text().strip()
            except FileNotFoundError:
                refused = None
            if name == refused:
                from midibridge.model.errors import WeightsError

                raise WeightsError("model_missing", f"{name}'s weights are not installed on this node (a test's fault)")
            return engine_for(self, name, *args, **kwargs)

        return engine_for_unless_refused

    class PatchPipeline(importlib.abc.MetaPathFinder):
        """Wraps Transcriber.convert and engine_for once midibridge.model.pipeline has loaded (importing it here
        would load onnxruntime into every process Ray starts)."""

        def find_spec(self, name, path, target=None):
            if name != "midibridge.model.pipeline":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            load = spec.loader.exec_module

            def exec_module(module):
                load(module)
                module.Transcriber.convert = held_convert(module.Transcriber.convert)
                module.Transcriber.engine_for = refusing(module.Transcriber.engine_for)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, PatchPipeline())
