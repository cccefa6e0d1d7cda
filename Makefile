# Set-up and everyday commands. Each target installs what it needs into .venv first and is safe
# to re-run: installs happen again only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APP_STAMP := $(VENV)/.app-installed
DEV_STAMP := $(VENV)/.dev-installed
# The CPU build of PyTorch: a bare `torch` requirement may pull a multi-GB CUDA build.
TORCH_CPU ?= torch==2.13.0

PACKAGE_STAMP := $(VENV)/.package-installed

.PHONY: run test lint package translations setup-app setup-dev clean

# Installs the system libraries Qt's window needs when missing (as root with apt-get; else it
# prints the command), prepares the default model once (a no-op afterwards), opens the app.
run: $(APP_STAMP)
	$(BIN)/python -m desktop.system_libs --install
	$(BIN)/nightlamp models pull
	$(BIN)/nightlamp gui

test: $(DEV_STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

# The app bundle (dist/nightlamp/, and on Linux a .tar.gz): PyInstaller, CPU-only ONNX Runtime,
# no torch. Options: make package PACKAGE_ARGS="--with-model" (ships the default model) or
# "--with-cuda"; see resources/packaging/README.md.
package: $(PACKAGE_STAMP)
	$(BIN)/python resources/packaging/build.py $(PACKAGE_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# After changing UI text: collect new strings into the .ts file (translate them there, e.g. with
# $(BIN)/pyside6-linguist), then compile the .qm the app loads.
translations: $(APP_STAMP)
	$(BIN)/pyside6-lupdate desktop/*.py -ts resources/translations/nightlamp_zh_CN.ts \
		-source-language en -target-language zh_CN -no-obsolete
	$(BIN)/pyside6-lrelease resources/translations/nightlamp_zh_CN.ts \
		-qm resources/translations/nightlamp_zh_CN.qm

setup-app: $(APP_STAMP)
setup-dev: $(DEV_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(APP_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(PACKAGE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[package]"
	touch $@ $(APP_STAMP)

# The tests build the app bundle too, so they need the package extra.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_CPU)"
	$(BIN)/python -m pip install --quiet -e ".[train,dev,package]"
	touch $@ $(APP_STAMP) $(PACKAGE_STAMP)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
