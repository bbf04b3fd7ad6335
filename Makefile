# rkbench: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The bundled real models ship inside this wheel (PP-OCR, see README).
EXAMPLE_MODELS := rapidocr_onnxruntime==1.4.4

.PHONY: install demo test bench lint clean

install: $(STAMP)

# Re-installs only when the packaging changes: a second `make install` is a no-op.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade 'pip>=23'
	$(PY) -m pip install -q -e '.[toolkit,dev]'
	$(PY) -m pip install -q --no-deps $(EXAMPLE_MODELS)
	touch $(STAMP)

demo: install
	$(VENV)/bin/rkbench demo

test: install lint
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

bench: install
	$(PY) -m bench

# The board-side code runs on the board's own Python (3.8+), the host on the Python that
# pyproject.toml's requires-python declares (3.10): both checked with a minimum-version linter.
HOST_PY := $(shell sed -n 's/^requires-python = ">=\([0-9.]*\)"/\1/p' pyproject.toml)
lint: install
	$(VENV)/bin/vermin -q --no-tips --violations -t=3.8- device shared
	$(VENV)/bin/vermin -q --no-tips --violations -t=$(HOST_PY)- host
	$(VENV)/bin/ruff check --quiet host bench tests device shared
	$(VENV)/bin/ruff format --check --quiet host bench tests device shared
	$(VENV)/bin/mypy --ignore-missing-imports shared/rkbench_wire
	$(VENV)/bin/mypy --ignore-missing-imports --follow-imports=silent host/rkbench/boards/transport

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
