# The two front-door commands: `make demo` and `make test`. Both build .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUNTIME := $(VENV)/.runtime

.PHONY: demo test lint typecheck bench bench-all crash soak clean

# The demo needs the runtime alone; the dev tools (pytest, mypy, ruff, ...) come with `make test`.
$(RUNTIME): pyproject.toml
	@echo "Installing switchgear and its runtime dependencies into $(VENV) (first run only)..."
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --progress-bar on --upgrade pip
	$(BIN)/pip install --progress-bar on -e .
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	@echo "Installing the development tools into $(VENV)..."
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(RUNTIME)
	$(BIN)/switchgear demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The dashboard's browser tests drive Debian's Chromium (Playwright's download is not used).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -qq
	$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y -qq chromium

test: $(STAMP) $(CHROMIUM) lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

# The HTTP benchmarks drive their servers with wrk (Debian's package), installed when missing.
WRK := /usr/bin/wrk
$(WRK):
	$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -qq
	$$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y -qq wrk

bench: $(STAMP) $(WRK)
	$(BIN)/python -m bench.run

bench-all: $(STAMP) $(WRK)
	$(BIN)/python -m bench.all $(ARGS)

crash: $(STAMP)
	$(BIN)/python -m bench.crash $(ARGS)

soak: $(STAMP)
	$(BIN)/python -m bench.soak $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
