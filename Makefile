# Two commands on a fresh machine with Python 3.11:
#   make book   set up .venv and build the HTML book into _build/html
#   make test   set up .venv and run every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# touched once requirements are installed; redone when they change
SETUP  := $(VENV)/.installed

.PHONY: book test clean

book: $(SETUP)
	$(BIN)/jupyter-book build . -n -W --keep-going

test: $(SETUP)
	$(BIN)/pytest

$(SETUP): requirements.txt code/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

clean:
	rm -rf _build .pytest_cache
