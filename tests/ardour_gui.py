"""Ardour 7's real editor, on a private X server, driven as a user would: for the GUI tests.

Ardour gets its own config dir (the Dummy audio engine starts by itself, no
first-run wizard), the action slots a user would set in the Script Manager
(written as Ardour saves them in `ui_scripts`), and a session with its OSC
surface on, on a UDP port of its own: a test presses menu actions over OSC
(`/access_action`), finds windows by title with xdotool, presses keys in them,
and takes screenshots. Several can run at once.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).parent / "ardour"
TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool", "import": "imagemagick", "ardour": "ardour"}

# The Dummy backend, started at launch without the Audio/MIDI Setup dialog; OSC on a port of the test's own.
CONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<Ardour>
  <Config>
    <Option name="hide-dummy-backend" value="0"/>
    <Option name="try-autostart-engine" value="1"/>
    <Option name="osc-port" value="{osc_port}"/>
  </Config>
  <Extra>
    <AudioMIDISetup>
      <EngineStates>
        <State backend="None (Dummy)" driver="" device="Silence" input-device="" output-device="" sample-rate="{rate}"
               buffer-size="1024" n-periods="2" input-latency="0" output-latency="0" input-channels="0"
               output-channels="0" active="1" use-buffered-io="0" midi-option="None (no MIDI)" lru="1700000000"/>
      </EngineStates>
    </AudioMIDISetup>
  </Extra>
</Ardour>
"""


def missing_tools() -> list[str]:
    return [package for tool, package in TOOLS.items() if shutil.which(tool) is None]


def write_action_slots(config: Path, slots: dict[int, tuple[Path, str]]) -> None:
    """Set `slots` ({slot: (script, preset)}) as the Script Manager's Add/Set does, in `config`/ardour7/ui_scripts."""
    state = config / "ardour7" / "ui_scripts.lua"
    args = [str(a) for slot, (script, preset) in slots.items() for a in (slot, script, preset)]
    done = subprocess.run(
        ["ardour7-lua", str(HERE / "action_slots.lua"), "write", str(state), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "SLOTS OK" in done.stdout, done.stdout + done.stderr
    content = base64.b64encode(state.read_bytes()).decode()
    (config / "ardour7" / "ui_scripts").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<UIScripts><ActionScript lua="Lua 5.3">{content}</ActionScript>'
        f"<ActionHooks/></UIScripts>\n"
    )
    state.unlink()


def saved_action_slots(config: Path) -> str:
    """What Ardour last saved of its action slots (the Lua state inside `ui_scripts`)."""
    text = (config / "ardour7" / "ui_scripts").read_text()
    return base64.b64decode(text.split('lua="Lua 5.3">')[1].split("</ActionScript>")[0]).decode(errors="replace")


class ArdourEditor:
    """`ardour SESSION` on Xvfb with the config dir `config` (XDG_CONFIG_HOME) and `env` (the test's daemon)."""

    def __init__(self, session: Path, *, config: Path, env: dict, log: Path, rate: int):
        self.session, self.log = session, log
        (config / "ardour7").mkdir(parents=True, exist_ok=True)
        self.osc_port = _free_udp_port()
        (config / "ardour7" / "config").write_text(CONFIG.format(rate=rate, osc_port=self.osc_port))
        (config / "ardour7" / ".a7").touch()  # not a first run: no setup wizard
        session_file = session / f"{session.name}.ardour"
        session_file.write_text(
            session_file.read_text().replace(
                '<Protocol name="Open Sound Control (OSC)" active="0"',
                '<Protocol name="Open Sound Control (OSC)" active="1"',
            )
        )
        read, write = os.pipe()
        self.xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        with os.fdopen(read) as display:
            self.env = dict(env, DISPLAY=":" + display.readline().strip(), XDG_CONFIG_HOME=str(config))
        with open(log, "wb") as output:  # Ardour keeps its own copy of the handle
            self.ardour = subprocess.Popen(
                ["ardour", "-n", "-a", str(session)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            self.window(f"{session.name} - Ardour", timeout_s=120)
        except BaseException:
            self.__exit__()
            raise
        time.sleep(2)  # the OSC surface comes up with the session, just after the window

    def __enter__(self) -> ArdourEditor:
        return self

    def __exit__(self, *exc) -> None:
        for process in (self.ardour, self.xvfb):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def do(self, action: str) -> None:
        """Activate one of Ardour's actions ("Editor/undo", "LuaAction/script-1", ...), as its menu or key would."""
        message = _osc_string("/access_action") + _osc_string(",s") + _osc_string(action)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(message, ("127.0.0.1", self.osc_port))
        time.sleep(1)  # the editor acts on it in its own time: let it, before the next one

    def window(self, title: str, *, timeout_s: float = 180) -> str:
        """The id of the window whose title has `title`, once there is one."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.ardour.poll() is None, f"Ardour exited: see {self.log}"
            found = self._xdotool("search", "--name", title).stdout.split()
            if found:
                return found[-1]
            time.sleep(0.2)
        shot = self.screenshot(self.log.with_name("no-such-window.png"))
        raise AssertionError(f"no window titled {title!r} after {timeout_s:g} s: the screen is in {shot}")

    def is_open(self, window: str) -> bool:
        return self._xdotool("getwindowname", window).returncode == 0

    def press(self, window: str, key: str) -> None:
        self._xdotool("windowfocus", "--sync", window, "key", key)

    def screenshot(self, path: Path) -> Path:
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True, timeout=60)
        return path

    def save(self) -> None:
        """Session › Save, done when the session file has been written."""
        session_file = self.session / f"{self.session.name}.ardour"
        before = session_file.stat().st_mtime_ns
        self.do("Common/Save")
        deadline = time.monotonic() + 60
        while session_file.stat().st_mtime_ns == before:
            assert time.monotonic() < deadline, "Ardour did not save the session"
            time.sleep(0.2)
        time.sleep(0.5)  # the history file follows the session file

    def _xdotool(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=60)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _osc_string(text: str) -> bytes:
    data = text.encode() + b"\0"
    return data + b"\0" * (-len(data) % 4)
