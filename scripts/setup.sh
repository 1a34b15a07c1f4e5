#!/usr/bin/env bash
# One-command environment for hand_pose_ros on a machine without a ROS install:
# a venv with the ROS 2 PyPI wheels, colcon-built messages, the project and its models.
#
# Idempotent: every step writes a stamp (inside the venv) keyed on the hash of its inputs, so
# a re-run with nothing changed only checks hashes and the model cache.
#
# Variables: ROS_DISTRO (jazzy | kilted, default jazzy), VENV (default <repo>/.venv),
# PYTHON (interpreter that creates the venv, default python3.11), WITH_TORCH (1 | 0, default 1),
# WITH_RETARGET (1 | 0, default WITH_TORCH: dex-retargeting for hand_retarget_node needs torch),
# WITH_RAY (1 | 0, default 1: ray for process-bag --ray),
# WITH_ROS_TOOLS (auto | 1 | 0, default auto: on when ROS_TOOLS_SRC exists), ROS_TOOLS_SRC
# (default <repo>/../shared/ros2-src: source archives of launch, ros2cli, tf2, ...).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROS_DISTRO="${ROS_DISTRO:-jazzy}"
VENV="${VENV:-$ROOT/.venv}"
WITH_TORCH="${WITH_TORCH:-1}"
WITH_RETARGET="${WITH_RETARGET:-$WITH_TORCH}"
WITH_RAY="${WITH_RAY:-1}"
WITH_ROS_TOOLS="${WITH_ROS_TOOLS:-auto}"
ROS_TOOLS_SRC="${ROS_TOOLS_SRC:-$ROOT/../shared/ros2-src}"
if [[ -z "${PYTHON:-}" ]]; then
  PYTHON="$(command -v python3.11 || command -v python3 || true)"
fi
REQ="$ROOT/requirements"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

case "$ROS_DISTRO" in
  jazzy | kilted) ;;
  *) die "ROS_DISTRO must be jazzy or kilted, got '$ROS_DISTRO'" ;;
esac
[[ -f "$REQ/ros-$ROS_DISTRO.txt" ]] || die "missing $REQ/ros-$ROS_DISTRO.txt"
if [[ "$WITH_RETARGET" == 1 && "$WITH_TORCH" != 1 ]]; then
  die 'WITH_RETARGET=1 needs WITH_TORCH=1 (dex-retargeting imports torch); or set WITH_RETARGET=0'
fi

# The ROS 2 tools (ros2 launch/run/topic/param/node, launch_ros, tf2_ros) are not on PyPI; their
# Jazzy sources are built into the venv when the archives are there. auto: on when they exist
# (and the distro is jazzy: the archives are Jazzy's); 1: required; 0: off.
case "$WITH_ROS_TOOLS" in
  auto)
    if [[ -d "$ROS_TOOLS_SRC" && "$ROS_DISTRO" == jazzy ]]; then ROS_TOOLS=1; else ROS_TOOLS=0; fi ;;
  1)
    [[ -d "$ROS_TOOLS_SRC" ]] || die "WITH_ROS_TOOLS=1 but $ROS_TOOLS_SRC does not exist"
    [[ "$ROS_DISTRO" == jazzy ]] || die "WITH_ROS_TOOLS=1 needs ROS_DISTRO=jazzy (Jazzy sources)"
    ROS_TOOLS=1 ;;
  0) ROS_TOOLS=0 ;;
  *) die "WITH_ROS_TOOLS must be auto, 1 or 0, got '$WITH_ROS_TOOLS'" ;;
esac

# Build folders live outside the colcon source tree (.cache has a COLCON_IGNORE), one per
# distro and venv so a second venv (e.g. a Kilted trial) never reuses a CMake cache.
VENV_KEY="$(printf '%s' "$VENV" | sha256sum | cut -c1-8)"
CACHE="$ROOT/.cache/setup-$ROS_DISTRO-$VENV_KEY"
STAMPS="$VENV/.hand_pose_ros_stamps"

# This machine's pip config names local indexes that lack most packages; pip warns once per
# package about them. Drop that noise, keep every other message.
pip_quiet() {
  "$PY" -m pip "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
}
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
stamp_ok() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp_set() { mkdir -p "$STAMPS" && printf '%s' "$2" >"$STAMPS/$1"; }
# colcon_build BASE PATH...: build the packages at PATH... into the venv, logs under BASE.
colcon_build() {
  local base="$1"
  shift
  mkdir -p "$base"
  if ! colcon --log-base "$base/log" build --paths "$@" \
    --build-base "$base/build" --install-base "$VENV" --merge-install \
    --event-handlers console_direct- --parallel-workers 2 \
    --cmake-args -DPython3_EXECUTABLE="$PY" -DCMAKE_PREFIX_PATH="$VENV" \
    -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$base/colcon.out" 2>&1; then
    tail -n 60 "$base/colcon.out" >&2
    die "colcon build failed (full log: $base/colcon.out)"
  fi
}

# ---- system tools: a C++ toolchain and CMake build the message packages ----
missing=()
for tool in cmake g++ make; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ make
  else
    die "missing ${missing[*]}: install them (Debian: sudo apt-get install cmake g++ make)"
  fi
fi

# ---- 1. the venv ----
# A venv whose creation failed half-way (e.g. no python3.11-venv: ensurepip missing) has a
# python but no pip; start it again rather than failing on every later run.
if [[ -x "$VENV/bin/python" ]] && ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  log "$VENV has no working pip: recreating it"
  rm -rf "$VENV"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  [[ -n "$PYTHON" ]] || die 'no python3.11 or python3 found; set PYTHON'
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "$PYTHON is not Python 3.11 (the ROS 2 wheels are cp311 only); set PYTHON"
  log "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"
# Keep colcon from crawling the venv's share/*/package.xml or the build cache.
mkdir -p "$ROOT/.cache"
touch "$VENV/COLCON_IGNORE" "$ROOT/.cache/COLCON_IGNORE"

# ---- 2. pinned Python packages, the ROS wheels and the fixes they need ----
# Every requirements/*.txt is installed except another distro's ros-*.txt and, with
# WITH_TORCH=0, torch.txt, and without the ROS tools step, ros-tools.txt. A file with a line '# --no-deps' is installed with --no-deps
# (it lists each package it needs explicitly).
req_files=()
nodeps_files=()
for f in "$REQ"/*.txt; do
  name="$(basename "$f")"
  case "$name" in
    ros-tools.txt) [[ "$ROS_TOOLS" == 1 ]] || continue ;;
    ros-*.txt) [[ "$name" == "ros-$ROS_DISTRO.txt" ]] || continue ;;
    torch.txt) [[ "$WITH_TORCH" == 1 ]] || continue ;;
    retarget.txt) [[ "$WITH_RETARGET" == 1 ]] || continue ;;
    ray.txt) [[ "$WITH_RAY" == 1 ]] || continue ;;
  esac
  if grep -qx '# --no-deps' "$f"; then nodeps_files+=("$f"); else req_files+=("$f"); fi
done
pip_key="$(hash_of "${req_files[@]}" ${nodeps_files[@]+"${nodeps_files[@]}"} \
  "$ROOT/scripts/fix_ros_wheels.py" <(echo "$ROS_DISTRO $WITH_TORCH $WITH_RETARGET $WITH_RAY $ROS_TOOLS"))"
if ! stamp_ok pip "$pip_key"; then
  log "installing Python packages (ROS 2 $ROS_DISTRO)"
  pip_args=(-q --disable-pip-version-check)
  req_args=()
  for f in "${req_files[@]}"; do req_args+=(-r "$f"); done
  pip_quiet install "${pip_args[@]}" "${req_args[@]}"
  for f in ${nodeps_files[@]+"${nodeps_files[@]}"}; do
    pip_quiet install "${pip_args[@]}" --no-deps -r "$f"
  done
  "$PY" "$ROOT/scripts/fix_ros_wheels.py" "$VENV"
  stamp_set pip "$pip_key"
fi

# ---- 3. the ROS 2 tools from source (WITH_ROS_TOOLS) ----
# launch, launch_ros + ros2launch, ros2cli and its verbs, rosidl_runtime_py,
# composition_interfaces and the tf2 stack (tf2_msgs, tf2, tf2_py, tf2_ros_py): extracted
# under .cache (never into the source tree) and colcon-built into the venv like a ROS
# underlay. The real tf2_msgs replaces the TFMessage-only stand-in of step 4, whose
# libraries would otherwise shadow it (tf2_ros then fails with `undefined symbol`).
# Left out: ros2doctor (needs rosdistro's network index), the launch_testing packages and
# the test fixtures (not needed to run or test this project).
TOOLS_PACKAGES=(
  launch/launch launch/launch_xml launch/launch_yaml
  launch_ros/launch_ros launch_ros/ros2launch
  ros2cli/ros2cli ros2cli/ros2pkg ros2cli/ros2run ros2cli/ros2node ros2cli/ros2topic
  ros2cli/ros2service ros2cli/ros2param ros2cli/ros2interface ros2cli/ros2action
  ros2cli/ros2lifecycle ros2cli/ros2component ros2cli/ros2multicast
  rosidl_runtime_py rcl_interfaces/composition_interfaces
  geometry2/tf2_msgs geometry2/tf2 geometry2/tf2_py geometry2/tf2_ros_py
)
TF2_STANDIN_MARKER='built by hand_pose_ros setup'
remove_tf2_standin() {
  # Files the stand-in installed (CMake's manifest), then what colcon added beside them.
  local manifest="$CACHE/build/tf2_msgs/install_manifest.txt"
  if [[ -f "$manifest" ]]; then
    while IFS= read -r f; do rm -f "$f"; done <"$manifest"
  fi
  rm -rf "$VENV/share/tf2_msgs" "$CACHE/build/tf2_msgs" "$CACHE/ws/src/tf2_msgs" \
    "$VENV/share/ament_index/resource_index/packages/tf2_msgs" \
    "$VENV/share/colcon-core/packages/tf2_msgs"
  local site
  site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  rm -rf "$site/tf2_msgs" "$site"/tf2_msgs-0.0.0-*.egg-info "$VENV"/lib/libtf2_msgs__*
}
if [[ "$ROS_TOOLS" == 1 ]]; then
  archives=("$ROS_TOOLS_SRC"/*.tar.gz)
  [[ -f "${archives[0]}" ]] || die "no *.tar.gz source archives in $ROS_TOOLS_SRC"
  tools_key="$(hash_of "${archives[@]}" "$STAMPS/pip" "${BASH_SOURCE[0]}")"
  if ! stamp_ok tools "$tools_key"; then
    TOOLS="$CACHE/ros-tools"
    rm -rf "$TOOLS/src"
    mkdir -p "$TOOLS/src"
    for a in "${archives[@]}"; do tar -xzf "$a" -C "$TOOLS/src"; done
    if grep -qs "$TF2_STANDIN_MARKER" "$VENV/share/tf2_msgs/package.xml"; then
      log 'removing the local tf2_msgs stand-in: the real tf2_msgs replaces it'
      remove_tf2_standin
    fi
    log "colcon-building the ROS 2 tools (${#TOOLS_PACKAGES[@]} packages) into $VENV"
    colcon_build "$TOOLS" "${TOOLS_PACKAGES[@]/#/$TOOLS/src/}"
    "$PY" -c 'import launch, launch_ros, ros2cli, tf2_msgs.srv, tf2_ros; tf2_ros.Buffer()' \
      || die 'the ROS tools were built but do not import (see above)'
    stamp_set tools "$tools_key"
  fi
fi

# ---- 4. interface packages: hand_pose_msgs, and tf2_msgs when no real one is importable ----
# tf2_msgs is not on PyPI; a local one with its one-line TFMessage is generated outside the
# source tree and built into the venv only. A real ROS install's tf2_msgs is used as is.
# With the ROS tools step the real tf2_msgs is there and the stand-in is never built.
TF2_SRC="$CACHE/ws/src/tf2_msgs"
tf2_local_marker="$TF2_STANDIN_MARKER"
need_tf2=0
if [[ "$ROS_TOOLS" == 0 ]] && { grep -qs "$tf2_local_marker" "$VENV/share/tf2_msgs/package.xml" \
  || ! "$PY" -c 'import tf2_msgs.msg' 2>/dev/null; }; then
  need_tf2=1
fi
msgs_key="$(hash_of "$ROOT"/hand_pose_msgs/CMakeLists.txt "$ROOT"/hand_pose_msgs/package.xml \
  "$ROOT"/hand_pose_msgs/msg/*.msg "$STAMPS/pip" "${BASH_SOURCE[0]}" <(echo "$need_tf2"))"
if ! stamp_ok msgs "$msgs_key"; then
  paths=("$ROOT/hand_pose_msgs")
  if [[ "$need_tf2" == 1 ]]; then
    mkdir -p "$TF2_SRC/msg"
    echo 'geometry_msgs/TransformStamped[] transforms' >"$TF2_SRC/msg/TFMessage.msg"
    cat >"$TF2_SRC/package.xml" <<EOF
<?xml version="1.0"?>
<package format="3">
  <name>tf2_msgs</name>
  <version>0.0.0</version>
  <description>Local stand-in for tf2_msgs (TFMessage only), $tf2_local_marker.</description>
  <maintainer email="maintainer@hand-pose-ros.dev">hand_pose_ros maintainers</maintainer>
  <license>BSD-3-Clause</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>
  <depend>geometry_msgs</depend>
  <exec_depend>rosidl_default_runtime</exec_depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
EOF
    cat >"$TF2_SRC/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.8)
project(tf2_msgs)
find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
find_package(geometry_msgs REQUIRED)
rosidl_generate_interfaces(${PROJECT_NAME} "msg/TFMessage.msg" DEPENDENCIES geometry_msgs)
ament_export_dependencies(rosidl_default_runtime)
ament_package()
EOF
    paths+=("$TF2_SRC")
  fi
  log "colcon-building ${paths[*]##*/} into $VENV"
  colcon_build "$CACHE" "${paths[@]}"
  "$PY" -c 'import hand_pose_msgs.msg, tf2_msgs.msg' \
    || die 'hand_pose_msgs / tf2_msgs built but not importable'
  stamp_set msgs "$msgs_key"
fi

# ---- 5. hand_pose_ros itself: editable install, laid out as ament_python installs it ----
PKG="$ROOT/hand_pose_ros"
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
pkg_key="$(hash_of "$PKG/setup.py" "$PKG/setup.cfg" "$PKG/package.xml" "${BASH_SOURCE[0]}" \
  <(cd "$PKG" && ls launch config))"
if ! stamp_ok pkg "$pkg_key"; then
  log 'installing hand_pose_ros (editable)'
  # compat mode: a plain .pth path entry, so the package wins over the namespace package
  # that the folder hand_pose_ros/ would give when Python runs from the repository root.
  pip_quiet install -q --disable-pip-version-check --no-deps --no-build-isolation \
    --config-settings editable_mode=compat -e "$PKG"
  # Editable installs skip data_files. Lay out what colcon's ament_python build (with
  # --symlink-install) does: real share/hand_pose_ros/{launch,config} folders holding a link
  # per file (ros2launch finds launch files with os.walk, which does not enter a linked
  # folder; a linked file is found, and edits to it apply at once), and the executables in
  # lib/hand_pose_ros, where `ros2 run` and launch_ros look for them.
  share="$VENV/share/hand_pose_ros"
  rm -rf "$share"  # an older layout linked the folders themselves; rm never follows links
  mkdir -p "$share/launch" "$share/config" "$VENV/share/ament_index/resource_index/packages"
  ln -sfn "$PKG/package.xml" "$share/package.xml"
  for f in "$PKG"/launch/*.py "$PKG"/config/*.{yaml,rviz,xml}; do
    sub="$(basename "$(dirname "$f")")"
    ln -sfn "$f" "$share/$sub/$(basename "$f")"
  done
  touch "$VENV/share/ament_index/resource_index/packages/hand_pose_ros"
  libexec="$VENV/lib/hand_pose_ros"
  mkdir -p "$libexec"
  # Every console script setup.py declares (read back from the installed metadata, so a new
  # executable such as hand_retarget_node needs no second list here).
  scripts="$("$PY" -c 'from importlib.metadata import entry_points
print(" ".join(e.name for e in entry_points(group="console_scripts")
               if e.value.startswith("hand_pose_ros.")))')"
  [[ -n "$scripts" ]] || die 'no hand_pose_ros console scripts found after the install'
  for script in $scripts; do
    [[ -x "$VENV/bin/$script" ]] || die "console script $script missing from $VENV/bin"
    ln -sfn "../../bin/$script" "$libexec/$script"
  done
  # ament_index_python (get_package_share_directory) needs AMENT_PREFIX_PATH; default it to
  # the venv so tools work without sourcing anything. A sourced ROS setup keeps its own.
  echo "import os, sys; os.environ.setdefault('AMENT_PREFIX_PATH', sys.prefix)" \
    >"$SITE/hand_pose_ros_env.pth"
  stamp_set pkg "$pkg_key"
fi

# ---- 6. the MediaPipe hand models (fetched once; verified by sha256 every run) ----
if [[ -f "$PKG/hand_pose_ros/cli/__main__.py" ]]; then
  "$PY" -m hand_pose_ros.cli fetch-models
else
  "$PY" -c 'from hand_pose_ros.core.models.catalog import fetch_models; fetch_models()'
fi

log "ready: ROS 2 $ROS_DISTRO in $VENV"
