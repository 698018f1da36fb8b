# Two commands for a fresh Debian/Ubuntu machine with Python 3:
#   make run    set everything up, convert the bundled example to MIDI and print its notes
#   make test   set everything up and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# fluidsynth + a GM soundfont render the tests' audio; ardour (7.x, with ardour7-lua) runs the DAW tests, its editor
# on a virtual X server (xvfb), driven with xdotool, photographed with imagemagick (x11-utils: to look by hand);
# headless chromium opens a batch's index.html report the way a person sees it. jackd2: the JACK server that
# `midibridge live` is a client of (its tests start their own, dummy backend).
APT_PACKAGES := python3-venv fluidsynth fluid-soundfont-gm ardour xvfb xdotool x11-utils imagemagick chromium jackd2
# The model's weights come from this package; installed with --no-deps, since
# its own requirements would pull in TensorFlow.
BASIC_PITCH := basic-pitch==0.4.0

.PHONY: run test lint setup system bench reliability

run: setup
	@mkdir -p out
	$(BIN)/midibridge convert examples/ode_to_joy_piano.flac -o out/ode_to_joy_piano.mid

test: setup lint
	$(BIN)/python -m pytest

# Ruff (lint and format) on everything, mypy on the installed package. mypy finds the package as `midibridge`
# through a link, since the repository root is the package (pyproject's package-dir).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@mkdir -p $(VENV)/typecheck && ln -sfn ../.. $(VENV)/typecheck/midibridge
	MYPYPATH=$(VENV)/typecheck $(BIN)/mypy

bench: setup
	$(BIN)/python -m benchmarks.transcription
	$(BIN)/python -m benchmarks.presets
	$(BIN)/python -m benchmarks.daemon
	$(BIN)/python -m benchmarks.drums
	$(BIN)/python -m benchmarks.cluster
	$(BIN)/python -m benchmarks.live

# The hardening suites, long variants where they have one (10,000 fuzzed messages, 300 jobs of a fuzzed worker,
# 50 clients x 100 requests): RELIABILITY.md's table.
reliability: setup
	@mkdir -p bench-out
	$(BIN)/python -m pytest tests/test_fuzz.py tests/test_fuzz_workers.py tests/test_bad_audio.py \
	  tests/test_truncated.py tests/test_faults.py tests/test_daemon_liveness.py tests/test_load.py \
	  tests/test_security.py tests/test_conformance_errors.py tests/test_conformance_requests.py --long --reliability-report bench-out/reliability.md

setup: system $(VENV)/.installed
	$(BIN)/midibridge model install

system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,cluster,live]'
	$(BIN)/pip install -q --no-deps $(BASIC_PITCH)
	touch $@
