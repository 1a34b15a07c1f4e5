#!/usr/bin/env bash
# The GPU check of issue #23 in one command, for a bare GPU machine (docs/gpu-check.md).
#
# usage: scripts/gpu_check.sh --device cpu|cuda|cuda:N --out DIR [--quick]
#
# Installs the carried wheels the interpreter lacks (.whl/, from scripts/gpu_wheels.sh) into
# a temporary --target folder, with no index and no network, puts it and the package sources
# on PYTHONPATH, points the tools at the carried models and shared data (.carry/, when
# present), then runs hand_pose_ros.tools.gpu_check: DIR/gpu_check.json and DIR/gpu_check.log.
# Environment: PYTHON (default python3), GPU_CHECK_WHL (.whl), GPU_CHECK_CARRY (.carry),
# GPU_CHECK_TIMEOUT (seconds for the check itself, default 390: the issue's 6 minutes plus
# the installs), GPU_CHECK_BUDGET (no section starts after this many seconds, default 330).
# Exit status: 0 when every section ran and passed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEVICE=cuda
OUT=
QUICK=()
while (($#)); do
  case $1 in
    --device) DEVICE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --quick) QUICK=(--quick); shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n $OUT ]] || { echo 'gpu_check: --out DIR is required' >&2; exit 2; }
PY=${PYTHON:-python3}
WHL=${GPU_CHECK_WHL:-$ROOT/.whl}
CARRY=${GPU_CHECK_CARRY:-$ROOT/.carry}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SITE=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_site.XXXXXX")
trap 'rm -rf "$SITE"' EXIT

run() {
  local start=$SECONDS missing=() wheel dist
  echo "gpu_check: $(date -u +%FT%TZ) device $DEVICE ${QUICK[*]} python $("$PY" -V 2>&1)"
  for wheel in "$WHL"/*.whl; do
    [[ -e $wheel ]] || continue
    dist=$(basename "$wheel")
    dist=${dist%%-*}
    if ! "$PY" -c 'import importlib.metadata as m, sys; m.version(sys.argv[1])' "$dist" \
        2>/dev/null; then
      missing+=("$wheel")
    fi
  done
  if ((${#missing[@]})); then
    echo "gpu_check: installing ${#missing[@]} carried wheel(s) from $WHL (no index)"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --find-links "$WHL" --target "$SITE" "${missing[@]}"
  fi
  export PYTHONPATH=$SITE:$ROOT/hand_pose_ros${PYTHONPATH:+:$PYTHONPATH}
  "$PY" -c 'import ai_edge_litert, tqdm, torch, cv2, flatbuffers' || {
    echo "gpu_check: a module is still missing: run scripts/gpu_wheels.sh here and carry" \
         ".whl (the wheels for this Python)" >&2; return 3; }
  [[ -d $CARRY/shared/data ]] && export HAND_POSE_ROS_SHARED=$CARRY/shared
  [[ -d $CARRY/models ]] && export HAND_POSE_ROS_MODEL_DIR=$CARRY/models
  echo "gpu_check: installs done in $((SECONDS - start)) s; shared data" \
       "${HAND_POSE_ROS_SHARED:-../shared}, models ${HAND_POSE_ROS_MODEL_DIR:-the cache}"
  PYTHONUNBUFFERED=1 timeout "${GPU_CHECK_TIMEOUT:-390}" "$PY" -m hand_pose_ros.tools.gpu_check \
    --device "$DEVICE" --out "$OUT" --budget-s "${GPU_CHECK_BUDGET:-330}" "${QUICK[@]}"
}

# pipefail: the status is run's (errexit holds inside it too).
run 2>&1 | tee "$OUT/gpu_check.log"
