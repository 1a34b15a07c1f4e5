"""teleop.launch.py's own checks, beside those test_launch_static.py runs on every launch file.

Its only node is hand_retarget_node, it sets only that node's parameters, and it passes to
hands.launch.py arguments declared there.
"""

from __future__ import annotations

import ast
import fnmatch

from hand_pose_ros.ros.retarget_node import RETARGET_SPECS
from test_launch_static import _arguments, _calls, _kw, _setup, PKG

PATH = PKG / 'launch' / 'teleop.launch.py'


def test_teleop_launch_nodes_arguments_and_install():
    tree = ast.parse(PATH.read_text())
    scripts, data = _setup()
    args = _arguments(tree)
    for name, desc in args.items():
        assert desc.strip('\'"()'), f'argument {name} has no description'
    used = {c.args[0].value for c in _calls(tree, 'LaunchConfiguration')
            if c.args and isinstance(c.args[0], ast.Constant)}
    assert used <= set(args), used - set(args)
    executables = {_kw(n, 'executable').value for n in _calls(tree, 'Node')}
    assert executables == {'hand_retarget_node'} and executables <= scripts
    node = _calls(tree, 'Node')[0]
    keys = {k.value for e in _kw(node, 'parameters').elts if isinstance(e, ast.Dict)
            for k in e.keys}
    assert keys <= {s.name for s in RETARGET_SPECS}, keys
    included = _arguments(ast.parse((PKG / 'launch' / 'hands.launch.py').read_text()))
    passed = {'image', 'camera_info', 'config', 'namespace', 'rviz'}
    assert passed <= set(included)
    assert any(dest.endswith("launch'") and any(
        fnmatch.fnmatch(f'launch/{PATH.name}', g) for g in globs) for dest, globs in data)


def test_teleop_launch_description_builds_where_launch_ros_is_installed():
    import importlib.util

    import pytest
    if importlib.util.find_spec('launch_ros') is None:
        pytest.skip('launch_ros is not installed (WITH_ROS_TOOLS=0)')
    spec = importlib.util.spec_from_file_location('teleop_launch', PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {a.name for a in description.get_launch_arguments()}
    assert {'image', 'left_config', 'right_config', 'urdf_dir'} <= names
