# Two commands on a fresh machine:  `make demo` (main job)  and  `make test` (test suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel of torch; override for your own build, e.g. TORCH='torch>=2.1'.
TORCH  ?= torch==2.13.0

.PHONY: setup demo test bench clean

# TinySoundFont's wheel carries the synthesiser; --no-deps skips pyaudio (live playback,
# which needs PortAudio headers to build and which TatumFlow does not use).
# A General MIDI SoundFont comes from the system where we may install it (Debian: 6 MB);
# without one, `tatumflow render` uses the built-in piano.
SOUNDFONT_PKG ?= timgm6mb-soundfont
# The studio's end-to-end tests drive a real browser (Debian's Chromium and its driver).
BROWSER_PKGS ?= chromium chromium-driver
apt_install = { apt-get install -y -q $(1) || { apt-get update -q && apt-get install -y -q $(1); }; }

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps "tinysoundfont>=0.3"
	@ls /usr/share/sounds/sf2/*.sf2 >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && $(call apt_install,$(SOUNDFONT_PKG)) >/dev/null 2>&1; } \
	  || echo "no SoundFont installed: audio is rendered with the built-in piano"
	@command -v chromedriver >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && $(call apt_install,$(BROWSER_PKGS)) >/dev/null 2>&1; } \
	  || echo "no headless Chromium installed: the studio's browser tests will skip"
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/tatumflow demo

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/tokenizer_speed.py
	$(BIN)/python benchmarks/prepare_speed.py
	$(BIN)/python benchmarks/roundtrip.py

clean:
	rm -rf out .pytest_cache
