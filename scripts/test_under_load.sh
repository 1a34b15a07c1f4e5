#!/usr/bin/env bash
# The test suite, RUNS times in a row, while busy loops keep every core busy.
#
# Why: the DDS and launch tests talk between processes; on a loaded CI machine samples are
# late or resent and discovery takes seconds. A test that passes only on a quiet machine
# fails there. This is the check the project asks for (issue 19): the suite passes 3 times in
# a row under a CPU hog.
#
#   scripts/test_under_load.sh                   # whole suite, 3 runs, one hog per core
#   RUNS=5 HOGS=2 scripts/test_under_load.sh hand_pose_ros/test/test_node_dds.py
#   make test-under-load RUNS=3
#
# Variables: VENV (default .venv), RUNS (3), HOGS (one per core, nproc), PYTEST_ARGS,
# LOG_DIR (default a new temp folder; one log per run). Arguments: test paths (default the
# whole suite). Prints PASS/FAIL per run with pytest's summary line and the time, and
# dex_retargeting-* folders left in the temp dir; exits 1 unless every run passed.

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
RUNS="${RUNS:-3}"
HOGS="${HOGS:-$(nproc)}"
PYTEST_ARGS="${PYTEST_ARGS:-}"
LOG_DIR="${LOG_DIR:-$(mktemp -d -t hand_pose_under_load.XXXXXX)}"
TMP="${TMPDIR:-/tmp}"
if [ "$#" -gt 0 ]; then TESTS=("$@"); else TESTS=(hand_pose_ros/test); fi
# Shell words, quotes honoured: PYTEST_ARGS='-k "node or launch"'.
eval "EXTRA=($PYTEST_ARGS)"

if [ ! -x "$VENV/bin/python" ]; then
  echo "no venv at $VENV: run make setup first" >&2
  exit 2
fi
mkdir -p "$LOG_DIR"

hogs=()
stop_hogs() {
  local pid
  for pid in "${hogs[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for pid in "${hogs[@]}"; do
    wait "$pid" 2>/dev/null
  done
  hogs=()
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM

leftovers() { find "$TMP" -maxdepth 1 -name 'dex_retargeting-*' 2>/dev/null | wc -l; }

for _ in $(seq "$HOGS"); do
  (while :; do :; done) &
  hogs+=("$!")
done
echo "[under-load] $HOGS busy loop(s) (pids ${hogs[*]}) on $(nproc) core(s); $RUNS run(s) of" \
  "${TESTS[*]}; logs in $LOG_DIR"

cd "$ROOT"
passed=0
for run in $(seq "$RUNS"); do
  log="$LOG_DIR/run$run.log"
  before=$(leftovers)
  start=$(date +%s)
  "$VENV/bin/python" -m pytest "${TESTS[@]}" -q -p no:cacheprovider "${EXTRA[@]}" >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  summary=$(grep -E '[0-9]+ (passed|failed|error)' "$log" | tail -n 1)
  left=$(( $(leftovers) - before ))
  if [ "$rc" -eq 0 ]; then
    verdict=PASS
    passed=$((passed + 1))
  else
    verdict=FAIL
  fi
  echo "[under-load] run $run/$RUNS: $verdict in ${took} s: ${summary:-no summary (rc $rc)};" \
    "dex_retargeting-* left: $left"
  if [ "$rc" -ne 0 ]; then
    { grep -E '^(FAILED|ERROR) ' "$log" || tail -n 5 "$log"; } | sed 's/^/[under-load]   /'
  fi
done
echo "[under-load] $passed of $RUNS run(s) passed"
[ "$passed" -eq "$RUNS" ]
