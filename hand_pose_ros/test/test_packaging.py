"""The two ROS packages are consistent with each other, with the code and with the installs.

A ROS user builds them with colcon and resolves dependencies with rosdep from package.xml; a
pip user installs requirements/*.txt. These tests keep package.xml, setup.py, the
requirements and the imports in the code telling the same story.
"""

from __future__ import annotations

import ast
from importlib import metadata
import importlib.util
from pathlib import Path
import re
import shutil
import subprocess
import sys

from catkin_pkg.package import parse_package
import hand_pose_ros
import pytest

REPO = Path(__file__).resolve().parents[2]
PKG_DIR = REPO / 'hand_pose_ros'
MSGS_DIR = REPO / 'hand_pose_msgs'
CONSOLE_SCRIPTS = {
    'hand-pose-ros': 'hand_pose_ros.cli.main:main',
    'hand_pose_node': 'hand_pose_ros.ros.node:main',
    'hand_pose_lifecycle_node': 'hand_pose_ros.ros.lifecycle_node:main',
    'hand_retarget_node': 'hand_pose_ros.ros.retarget_node:main',
    'replay': 'hand_pose_ros.ros.replay:main',
    'calibration_tf': 'hand_pose_ros.ros.calibration_tf:main',
}
# pip distributions that have a rosdep key: a ROS user gets them from the system.
ROSDEP_KEYS = {
    'numpy': 'python3-numpy',
    'opencv-python-headless': 'python3-opencv',
    'pyyaml': 'python3-yaml',
}
# ROS packages the code may import that are not on PyPI (used when a ROS install has them).
ROS_ONLY_PACKAGES = {'tf2_ros', 'launch', 'launch_ros', 'ament_index_python', 'cv_bridge'}


def _norm(dist: str) -> str:
    return re.sub(r'[-_.]+', '-', dist).lower()


def _deps(package) -> set[str]:
    return {d.name for d in package.build_depends + package.buildtool_depends
            + package.exec_depends + package.build_export_depends}


def _requirements() -> dict[str, str]:
    """Normalised pip name -> the requirements file that pins it."""
    pinned = {}
    for path in sorted((REPO / 'requirements').glob('*.txt')):
        for line in path.read_text().splitlines():
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                name = re.split(r'[\[<>=!~ ;]', line, maxsplit=1)[0]
                pinned[_norm(name)] = path.name
    return pinned


def _imports_of_package() -> dict[str, set[str]]:
    """Top-level module -> files importing it, over the installed Python package."""
    found: dict[str, set[str]] = {}
    for path in (PKG_DIR / 'hand_pose_ros').rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split('.')[0], set()).add(str(path.relative_to(REPO)))
    return found


@pytest.fixture(scope='module')
def packages():
    return {d.name: parse_package(str(d / 'package.xml')) for d in (PKG_DIR, MSGS_DIR)}


def test_package_xml_valid_format3(packages):
    for name, package in packages.items():
        package.validate()  # raises on a bad maintainer email, name, version, ...
        assert package.package_format == 3, name
        assert package.name == name
        assert package.maintainers and package.licenses


def test_build_types(packages):
    assert packages['hand_pose_msgs'].get_build_type() == 'ament_cmake'
    assert packages['hand_pose_ros'].get_build_type() == 'ament_python'
    msgs = packages['hand_pose_msgs']
    assert 'rosidl_interface_packages' in {g.name for g in msgs.member_of_groups}
    assert {'ament_cmake', 'rosidl_default_generators'} <= _deps(msgs)
    assert 'rosidl_default_runtime' in _deps(msgs)


def test_versions_agree(packages):
    versions = {
        'hand_pose_ros/package.xml': packages['hand_pose_ros'].version,
        'hand_pose_msgs/package.xml': packages['hand_pose_msgs'].version,
        'hand_pose_ros.__version__': hand_pose_ros.__version__,
        'installed distribution': metadata.version('hand_pose_ros'),
    }
    assert len(set(versions.values())) == 1, versions


def test_msgs_cmake_lists_every_message_and_dependency(packages):
    cmake = (MSGS_DIR / 'CMakeLists.txt').read_text()
    for msg in sorted((MSGS_DIR / 'msg').glob('*.msg')):
        assert f'"msg/{msg.name}"' in cmake, f'{msg.name} missing from rosidl_generate_interfaces'
    used = set()
    for msg in (MSGS_DIR / 'msg').glob('*.msg'):
        used |= set(re.findall(r'^\s*(\w+_msgs)/', msg.read_text(), re.MULTILINE))
    for dep in used:
        assert dep in _deps(packages['hand_pose_msgs']), f'{dep} missing from package.xml'
        assert f'find_package({dep} REQUIRED)' in cmake
        assert re.search(rf'DEPENDENCIES[^)]*\b{dep}\b', cmake), f'{dep} not in DEPENDENCIES'


def test_every_import_is_a_declared_dependency(packages):
    """ROS imports need a package.xml entry; pip imports a pinned requirement (and, where a
    rosdep key exists, that key in package.xml)."""
    ros_deps = _deps(packages['hand_pose_ros'])
    pinned = _requirements()
    dists = metadata.packages_distributions()
    index = Path(sys.prefix, 'share', 'ament_index', 'resource_index', 'packages')
    test_helpers = {p.stem for p in (PKG_DIR / 'test').glob('*.py')}
    problems = []
    for module, files in sorted(_imports_of_package().items()):
        where = ', '.join(sorted(files))
        if module in sys.stdlib_module_names or module == 'hand_pose_ros':
            continue
        if (index / module).exists() or module in ROS_ONLY_PACKAGES:
            if module not in ros_deps:
                problems.append(f'ROS package {module} ({where}) missing from package.xml')
            continue
        if module in test_helpers:
            continue  # a developer tool loading a test helper from the source tree
        # An optional dependency left out of this venv (WITH_TORCH=0) is checked by name.
        for dist in dists.get(module, [module]):
            if _norm(dist) not in pinned:
                problems.append(f'{dist} (import {module}, {where}) not in requirements/*.txt')
            key = ROSDEP_KEYS.get(_norm(dist))
            if key and key not in ros_deps:
                problems.append(f'rosdep key {key} for {dist} missing from package.xml')
    assert not problems, '\n'.join(problems)


def test_pip_only_dependencies_documented():
    """What rosdep cannot install must be named in the README's pip line."""
    readme = (REPO / 'README.md').read_text()
    for line in (REPO / 'requirements' / 'base.txt').read_text().splitlines():
        name = line.split('#', 1)[0].split('==')[0].strip()
        if name and _norm(name) not in ROSDEP_KEYS:
            assert name in readme, f'pip-only dependency {name} not mentioned in README.md'


def test_console_scripts_point_at_functions():
    eps = {ep.name: ep.value for ep in metadata.entry_points(group='console_scripts')
           if ep.dist is not None and ep.dist.name == 'hand_pose_ros'}
    assert eps == CONSOLE_SCRIPTS
    for name, target in CONSOLE_SCRIPTS.items():
        module, func = target.split(':')
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, f'{name}: module {module} not found'
        tree = ast.parse(Path(spec.origin).read_text())
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert func in functions, f'{name}: {module} has no function {func}'
        assert (Path(sys.prefix) / 'bin' / name).is_file(), f'{name} not installed in the venv'


def test_share_folder_resolves_through_ament_index():
    from ament_index_python.packages import get_package_share_directory

    share = Path(get_package_share_directory('hand_pose_ros'))
    assert (share / 'package.xml').read_text() == (PKG_DIR / 'package.xml').read_text()
    for sub, patterns in (('launch', ['*.py']), ('config', ['*.yaml', '*.rviz'])):
        src = sorted(p.name for pat in patterns for p in (PKG_DIR / sub).glob(pat))
        got = sorted(p.name for pat in patterns for p in (share / sub).glob(pat))
        assert got == src, sub
    assert Path(get_package_share_directory('hand_pose_msgs'), 'msg', 'Hand.msg').is_file()


def test_colcon_workspace_route(tmp_path: Path):
    """What a ROS user runs: colcon finds exactly the two packages (never the venv's or the
    setup cache's), and the ament_python build installs the ROS layout (`ros2 run` finds
    lib/hand_pose_ros/<script>; launch and config files in share/)."""
    colcon = shutil.which('colcon', path=str(Path(sys.prefix, 'bin')))
    assert colcon, 'colcon is not installed in the venv'
    listed = subprocess.run([colcon, 'list', '--base-paths', str(REPO), '--names-only'],
                            capture_output=True, text=True, check=True, timeout=120)
    assert sorted(listed.stdout.split()) == ['hand_pose_msgs', 'hand_pose_ros']

    install = tmp_path / 'install'
    build = subprocess.run(
        [colcon, '--log-base', str(tmp_path / 'log'), 'build', '--base-paths', str(REPO),
         '--packages-select', 'hand_pose_ros', '--build-base', str(tmp_path / 'build'),
         '--install-base', str(install), '--merge-install',
         '--event-handlers', 'console_direct-'],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert build.returncode == 0, build.stdout + build.stderr
    for script in CONSOLE_SCRIPTS:
        assert (install / 'lib' / 'hand_pose_ros' / script).is_file(), script
    share = install / 'share' / 'hand_pose_ros'
    assert (share / 'package.xml').is_file()
    assert (install / 'share' / 'ament_index' / 'resource_index' / 'packages'
            / 'hand_pose_ros').is_file()
    for sub, pattern in (('launch', '*.py'), ('config', '*.yaml')):
        src = sorted(p.name for p in (PKG_DIR / sub).glob(pattern))
        assert sorted(p.name for p in (share / sub).glob(pattern)) == src, sub


def test_core_never_imports_rclpy() -> None:
    """The core is usable without ROS: importing every core module pulls in no rclpy.

    Modules of optional runtimes whose dependency is not installed (torch, tflite,
    mediapipe: e.g. WITH_TORCH=0) are skipped; everything else must import.
    """
    code = (
        'import importlib, pkgutil, sys\n'
        'import hand_pose_ros.core as core\n'
        'for m in pkgutil.walk_packages(core.__path__, "hand_pose_ros.core."):\n'
        '    try:\n'
        '        importlib.import_module(m.name)\n'
        '    except ModuleNotFoundError as exc:\n'
        '        if exc.name not in ("torch", "tflite", "mediapipe"):\n'
        '            raise\n'
        'bad = sorted(n for n in sys.modules if n == "rclpy" or n.startswith("rclpy."))\n'
        'print(",".join(bad))\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '', f'core imported {out.stdout.strip()}'


def test_setup_venv_lays_out_every_console_script_for_ros2_run():
    """scripts/setup.sh's venv has what `ros2 run` and launch_ros look for: each executable
    in lib/hand_pose_ros (teleop.launch.py's hand_retarget_node was once left out)."""
    libexec = Path(sys.prefix) / 'lib' / 'hand_pose_ros'
    assert libexec.is_dir(), f'{libexec} missing: these tests run in the venv of scripts/setup.sh'
    for script in CONSOLE_SCRIPTS:
        assert (libexec / script).exists(), f'{script} is not in {libexec}'
