# Two commands on a fresh machine with Python 3.11:
#   make book   set up .venv and build the HTML book into _build/html
#   make test   set up .venv, build the book, then run every test (the built pages in Chromium too)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# touched once requirements are installed; redone when they change
SETUP  := $(VENV)/.installed

.PHONY: book test bench student clean

book: $(SETUP)
	$(BIN)/jupyter-book build . -n -W --keep-going

# the browser and link tests read _build/html, so the book is built (strictly) first
test: book
	$(BIN)/pytest

# throughput, quality, memory, then a full executed build into /tmp/bench-build (~15 min on 2 cores);
# writes benchmarks/results/report.md and report.json. One part: $(BIN)/python benchmarks/run.py quality
bench: $(SETUP)
	$(BIN)/python benchmarks/run.py

# the student edition in _build/student: chapters/*.ipynb without solutions (to hand out or open
# in Colab), student-notebooks.zip, and the student HTML in html/ (executes the chapters, minutes)
student: $(SETUP)
	$(BIN)/python tools/student_edition.py

$(SETUP): requirements.txt code/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

clean:
	rm -rf _build .pytest_cache
