# One-command entry points. Everything runs inside ./.venv so the machine's own Python stays untouched.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test quickstart gpu-check clean-venv

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	# the VOT toolkit (pin: VOT_TOOLKIT in setup.py) without its opencv-python (GUI) requirement: it runs on the
	# opencv-python-headless build that the project installs, and the GUI build would overwrite its cv2
	$(PY) -m pip install --quiet --no-deps "$$(sed -n 's/^VOT_TOOLKIT = "\(.*\)"$$/\1/p' setup.py)"
	$(PY) -c "import torch, torchvision, timm; print('torch', torch.__version__, '| torchvision', torchvision.__version__, '| timm', timm.__version__)"
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

quickstart: $(STAMP)
	$(PY) tracking/quickstart.py

# CUDA tests, GPU profiles, --batch throughput, AMP + nccl training; CPU-compatible parts only without CUDA (docs/speed.md)
gpu-check: $(STAMP)
	$(PY) tracking/gpu_check.py --out output/gpu_check

clean-venv:
	rm -rf $(VENV)
