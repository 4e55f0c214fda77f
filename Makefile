# Two entry points (see README.md): `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of PyTorch. Override for a GPU machine, e.g. `make setup TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
OUT ?= runs/digits-vae
# The browser tests (tests/test_browser.py) drive Debian's Chromium through its chromedriver, never a download.
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
# Where the set-up can install the browser (as root, as on CI) the browser tests fail rather than skip without it.
AEKIT_REQUIRE_BROWSER ?= $(if $(or $(filter 0,$(shell id -u)),$(filter 1 true yes,$(CI))),1,0)

.PHONY: setup browser demo test lint format bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

# Headless Chromium and chromedriver for the browser tests, from apt when missing (needs root; otherwise a note,
# and those tests skip).
browser:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; \
	else \
		echo "note: $(CHROMIUM) or $(CHROMEDRIVER) is missing and this is not root, so the browser tests will skip."; \
		echo "      Install them with: sudo apt-get install --no-install-recommends chromium chromium-driver"; \
	fi

# The main job: train a VAE on the embedded digits data set, write its run directory and report.
demo: setup
	$(BIN)/aekit train --model vae --data digits --epochs 150 --out $(OUT) --overwrite

lint: setup
	$(BIN)/ruff check src tests experiments bench examples
	$(BIN)/ruff format --check src tests experiments bench examples

format: setup
	$(BIN)/ruff check --fix src tests experiments bench examples
	$(BIN)/ruff format src tests experiments bench examples

test: lint browser
	AEKIT_REQUIRE_BROWSER=$(AEKIT_REQUIRE_BROWSER) $(BIN)/python -m pytest -q -n 2

# The performance benchmark (docs/performance.md; about 12 minutes on 2 cores): training throughput of
# the MLP VAE, conv AE and VQ-VAE against minimal hand-written loops and the matmul limit, evaluation
# throughput, epoch time against data size and width, and peak memory, in memory and streamed.
BENCH_OUT ?= bench/results
bench: setup
	mkdir -p $(BENCH_OUT)
	$(BIN)/python bench/bench_train.py --rounds 5 --json $(BENCH_OUT)/train.json
	$(BIN)/python bench/bench_models.py --rounds 3 --json $(BENCH_OUT)/models.json
	$(BIN)/python bench/bench_scaling.py --repeats 3 --json $(BENCH_OUT)/scaling.json
	$(BIN)/python bench/bench_memory.py --json $(BENCH_OUT)/memory.json

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
