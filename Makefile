# hand_pose_ros: one entry point. `make demo` runs the main job, `make test` passes the tests.
# Both set up everything first (scripts/setup.sh; a re-run with nothing changed takes seconds).
#
# Variables: ROS_DISTRO=jazzy|kilted, VENV=<path>, WITH_TORCH=1|0, DEMO_ARGS, BENCH_ARGS,
# PYTEST_ARGS; for test-under-load RUNS (3), HOGS (one per core) and LOAD_TESTS (test paths).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV ?= $(ROOT)/.venv
export VENV
PY := $(VENV)/bin/python
DEMO_ARGS ?=
BENCH_ARGS ?=
PYTEST_ARGS ?=
RUNS ?= 3
LOAD_TESTS ?= hand_pose_ros/test

.PHONY: setup test test-under-load demo bench gpu-wheels gpu-check lint clean distclean

setup:
	bash $(ROOT)/scripts/setup.sh

test: setup
	cd $(ROOT) && $(PY) -m pytest hand_pose_ros/test $(PYTEST_ARGS)
	cd $(ROOT) && $(VENV)/bin/ruff check .

# The suite RUNS times in a row while a busy loop keeps each core busy (the check of a suite
# that holds under load); PASS/FAIL per run, status 1 unless all passed.
test-under-load: setup
	cd $(ROOT) && RUNS=$(RUNS) PYTEST_ARGS="$(PYTEST_ARGS)" bash scripts/test_under_load.sh $(LOAD_TESTS)

demo: setup
	cd $(ROOT) && $(PY) -m hand_pose_ros.tools.demo $(DEMO_ARGS)

bench: setup
	cd $(ROOT) && $(VENV)/bin/hand-pose-ros bench $(BENCH_ARGS)

# The GPU check of issue #23 (docs/gpu-check.md): gpu-wheels fills .whl/ and .carry/ here
# (network, the model cache and ../shared); gpu-check runs on the machine that has them,
# GPU_DEVICE=cuda|cpu, GPU_OUT=<folder>, GPU_QUICK=1 for the small CI sizes.
GPU_DEVICE ?= cuda
GPU_OUT ?= $(ROOT)/out/gpu_check
GPU_QUICK ?=
GPU_PYTHON ?= $(if $(wildcard $(PY)),$(PY),python3)
gpu-wheels:
	bash $(ROOT)/scripts/gpu_wheels.sh

gpu-check:
	PYTHON=$(GPU_PYTHON) bash $(ROOT)/scripts/gpu_check.sh --device $(GPU_DEVICE) --out $(GPU_OUT) $(if $(GPU_QUICK),--quick,)

lint:
	cd $(ROOT) && $(VENV)/bin/ruff check .

# Build folders only; `distclean` also removes the venv. The model cache
# (~/.cache/hand_pose_ros) is kept: `hand-pose-ros fetch-models` refills it.
clean:
	rm -rf $(ROOT)/.cache $(ROOT)/build $(ROOT)/install $(ROOT)/log $(ROOT)/.pytest_cache $(ROOT)/.ruff_cache

distclean: clean
	rm -rf $(VENV)
