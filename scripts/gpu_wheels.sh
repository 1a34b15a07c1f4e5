#!/usr/bin/env bash
# Prepare what scripts/gpu_check.sh needs on a bare GPU machine (issue #23), in two
# git-ignored folders that the device tool carries (run's carry: ['.whl', '.carry']):
#   .whl/    the wheels that machine lacks: it has Python with torch, numpy, OpenCV headless,
#            flatbuffers and onnxruntime, but not ai-edge-litert (the .tflite schema reader
#            of the torch path and the LiteRT baseline), its needs protobuf and
#            backports.strenum, nor tqdm;
#   .carry/  the four hand models (models/) and the shared data the checks read
#            (shared/data/hands, the golden static photos; shared/data/motion, the sequences).
# It has no network, and at most 64 MiB travel: the total is printed and checked.
#
# usage: scripts/gpu_wheels.sh [--python-version 3.12] [--whl DIR] [--carry DIR]
#                              [--from-installed PYTHON] [--no-carry]
#   --from-installed PYTHON  repack the wheels from what PYTHON has installed instead of
#                            downloading them (offline; CI's test uses it for cp311).
#   --no-carry               wheels only (no models, no shared data).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYVER=3.12
WHL=$ROOT/.whl
CARRY=$ROOT/.carry
FROM=
WITH_CARRY=1
while (($#)); do
  case $1 in
    --python-version) PYVER=$2; shift 2 ;;
    --whl) WHL=$2; shift 2 ;;
    --carry) CARRY=$2; shift 2 ;;
    --from-installed) FROM=$2; shift 2 ;;
    --no-carry) WITH_CARRY=0; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "gpu_wheels: unknown argument $1" >&2; exit 2 ;;
  esac
done

# ai-edge-litert and tqdm as pinned for the package; protobuf and backports.strenum are
# ai-edge-litert's needs that the GPU machine lacks (numpy, flatbuffers and
# typing-extensions come with its torch). --no-deps below: each one is named here.
pin() { grep -E "^$1==" "$ROOT/requirements/base.txt" | head -1; }
WHEELS=("$(pin ai-edge-litert)" "$(pin tqdm)" 'protobuf==7.36.2' 'backports.strenum==1.2.8')

mkdir -p "$WHL"
rm -f "$WHL"/*.whl
if [[ -n $FROM ]]; then
  "$FROM" "$ROOT/scripts/repack_installed.py" "$WHL" "${WHEELS[@]}"
else
  PLATFORMS=()
  for p in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
    PLATFORMS+=(--platform "${p}_x86_64")
  done
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
    --implementation cp "${PLATFORMS[@]}" -d "$WHL" "${WHEELS[@]}" || {
    echo "gpu_wheels: pip download failed (network, or no wheel of ${WHEELS[*]} for" \
         "Python $PYVER manylinux x86_64)" >&2; exit 1; }
fi

if ((WITH_CARRY)); then
  MODELS=${HAND_POSE_ROS_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hand_pose_ros/models}
  SHARED=${HAND_POSE_ROS_SHARED:-$ROOT/../shared}
  rm -rf "$CARRY"
  mkdir -p "$CARRY/models" "$CARRY/shared/data"
  for m in palm_detection_lite palm_detection_full hand_landmark_lite hand_landmark_full; do
    [[ -f $MODELS/$m.tflite ]] || {
      echo "gpu_wheels: $MODELS/$m.tflite missing: run hand-pose-ros fetch-models" >&2; exit 1; }
    cp "$MODELS/$m.tflite" "$CARRY/models/"
  done
  for d in hands motion; do
    [[ -d $SHARED/data/$d ]] || {
      echo "gpu_wheels: $SHARED/data/$d missing (the shared data set)" >&2; exit 1; }
    cp -r "$SHARED/data/$d" "$CARRY/shared/data/"
  done
fi

PATHS=("$WHL")
((WITH_CARRY)) && PATHS+=("$CARRY")
du -sh "${PATHS[@]}" | sed 's/^/gpu_wheels: /'
TOTAL=$(du -sbc "${PATHS[@]}" | tail -1 | cut -f1)
echo "gpu_wheels: total carried $((TOTAL / 1024)) KiB ($(ls "$WHL" | wc -l) wheels)"
if ((TOTAL > 60 * 1024 * 1024)); then
  echo "gpu_wheels: over 60 MiB: the device tool carries at most 64 MiB with the tree" >&2
  exit 1
fi
