"""The launch files, config files and setup.py agree (checked without running ROS launch).

launch and launch_ros are not on PyPI, so `ros2 launch` cannot run here. Instead the launch
files are parsed with `ast` and checked for what a real install would trip over:
- every Node(package='hand_pose_ros', executable=...) names a console_scripts entry point of
  setup.py (executables of other packages must be on a short known list: rviz2);
- every file reached through FindPackageShare('hand_pose_ros') / <folder> / <file> exists in
  the package and is installed by setup.py's data_files globs;
- every launch argument has a description, every LaunchConfiguration used is declared, and
  the arguments an IncludeLaunchDescription passes are declared by the included file;
- every parameter a launch file sets is declared by the node it starts (hand_pose_node: the
  parameters table; replay and hand_retarget_node: their options' definitions), and
  hand_pose_node's remapped topic names are the ones it subscribes to by default;
- hands.launch.py's parameter arguments default to '' and override the parameter file only
  when given;
- config/hands.yaml lists exactly the node's parameters, with their defaults.
Where launch_ros is installed (a ROS 2 workspace), the files are also imported and
generate_launch_description() is called.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
from pathlib import Path

from hand_pose_ros.ros import parameters
import pytest
import yaml

PKG = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((PKG / 'launch').glob('*.launch.py'))
KNOWN_FOREIGN_EXECUTABLES = {'rviz2': 'rviz2'}


def _setup() -> tuple[set[str], list[tuple[str, list[str]]]]:
    """(console script names, [(install dir, [source globs])]) read from setup.py's AST."""
    tree = ast.parse((PKG / 'setup.py').read_text())
    scripts: set[str] = set()
    data: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == 'entry_points':
            for key, val in zip(node.value.keys, node.value.values):
                if ast.literal_eval(key) == 'console_scripts':
                    scripts = {s.split('=')[0].strip() for s in ast.literal_eval(val)}
        if isinstance(node, ast.keyword) and node.arg == 'data_files':
            for elt in node.value.elts:
                dest = ast.unparse(elt.elts[0])
                globs = [c.args[0].value for c in ast.walk(elt.elts[1])
                         if isinstance(c, ast.Call) and getattr(c.func, 'id', '') == '_files']
                data.append((dest, globs))
    return scripts, data


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and (getattr(n.func, 'id', None) == name or getattr(n.func, 'attr', None) == name)]


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _executables(call: ast.Call) -> list[str]:
    """The executable(s) of a Node action: a name, or both names of `a if managed else b`."""
    value = _kw(call, 'executable')
    if isinstance(value, ast.IfExp):
        return [value.body.value, value.orelse.value]
    return [value.value]


MANAGED = {'hand_pose_lifecycle_node': 'hand_pose_node'}  # managed variant -> its plain node


def _arguments(tree: ast.AST) -> dict[str, str]:
    """Launch arguments from the module's ARGUMENTS table: name -> description."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'ARGUMENTS':
            return {e.elts[0].value: ast.unparse(e.elts[2]) for e in node.value.elts}
    raise AssertionError('launch file has no ARGUMENTS table')


def _share_paths(tree: ast.AST) -> list[tuple[str, str]]:
    """(folder, file) of every PathJoinSubstitution([FindPackageShare(pkg), folder, file])."""
    out = []
    for call in _calls(tree, 'PathJoinSubstitution'):
        parts = call.args[0].elts
        if _calls(parts[0], 'FindPackageShare'):
            assert _calls(parts[0], 'FindPackageShare')[0].args[0].value == 'hand_pose_ros'
            out.append((parts[1].value, parts[2].value))
    return out


def _replay_params() -> set[str]:
    from hand_pose_ros.ros.replay import REPLAY_SPECS
    return {s.name for s in REPLAY_SPECS}


def test_there_are_the_two_launch_files():
    assert {p.name for p in LAUNCH_FILES} == {'hands.launch.py', 'replay.launch.py',
                                              'teleop.launch.py', 'multiview.launch.py'}


def _calibration_tf_params() -> set[str]:
    from hand_pose_ros.ros.calibration_tf import CALIBRATION_TF_SPECS
    return {s.name for s in CALIBRATION_TF_SPECS}


def _retarget_params() -> set[str]:
    from hand_pose_ros.ros.retarget_node import RETARGET_SPECS
    return {s.name for s in RETARGET_SPECS}


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_executables_and_parameters_match_setup_and_nodes(path):
    scripts, _ = _setup()
    tree = ast.parse(path.read_text())
    nodes = _calls(tree, 'Node')
    assert nodes, 'no Node action'
    for node, found in [(n, e) for n in nodes for e in _executables(n)]:
        package = _kw(node, 'package').value
        if package != 'hand_pose_ros':
            assert KNOWN_FOREIGN_EXECUTABLES.get(package) == found
            continue
        assert found in scripts, f'{found} is not a console script in setup.py'
        executable = MANAGED.get(found, found)  # same parameters and remappings
        declared = {'hand_pose_node': lambda: set(parameters.SPECS),
                    'hand_retarget_node': _retarget_params,
                    'calibration_tf': _calibration_tf_params}.get(executable, _replay_params)()
        params = _kw(node, 'parameters')
        for d in [e for e in params.elts if isinstance(e, ast.Dict)]:
            keys = {k.value for k in d.keys}
            assert keys <= declared, f'{executable} does not declare {keys - declared}'
        if executable == 'hand_pose_node' and path.name == 'multiview.launch.py':
            # Its cameras are namespaces (<camera>/image_raw): nothing to remap.
            assert all(k.arg != 'remappings' for k in node.keywords)
        elif executable == 'hand_pose_node':
            sources = {e.elts[0].value for e in _kw(node, 'remappings').elts}
            defaults = {parameters.SPECS['image_topic'].default,
                        parameters.SPECS['image_topic'].default + '/compressed',
                        parameters.SPECS['camera_info_topic'].default, 'depth'}
            assert sources == defaults


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_arguments_are_described_and_declared(path):
    tree = ast.parse(path.read_text())
    args = _arguments(tree)
    assert 'rviz' in args or path.name == 'replay.launch.py'
    for name, desc in args.items():
        assert len(desc) > 12, f'argument {name} has no real description'
    used = {c.args[0].value for c in _calls(tree, 'LaunchConfiguration')
            if isinstance(c.args[0], ast.Constant)}
    # cfg = {name: LaunchConfiguration(name) for name in ARGUMENTS}: every use goes via cfg[...]
    subscripts = {n.slice.value for n in ast.walk(tree) if isinstance(n, ast.Subscript)
                  and getattr(n.value, 'id', '') == 'cfg'}
    assert used <= set(args) and subscripts <= set(args), subscripts - set(args)
    for inc in _calls(tree, 'IncludeLaunchDescription'):
        target = [f for folder, f in _share_paths(inc) if folder == 'launch'][0]
        passed = {k.value for k in _kw(inc, 'launch_arguments').func.value.keys}
        included = _arguments(ast.parse((PKG / 'launch' / target).read_text()))
        assert passed <= set(included), passed - set(included)


def _argument_defaults(tree: ast.AST) -> dict[str, str]:
    """Launch arguments from the ARGUMENTS table: name -> default (source text)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'ARGUMENTS':
            return {e.elts[0].value: ast.unparse(e.elts[1]) for e in node.value.elts}
    raise AssertionError('launch file has no ARGUMENTS table')


def test_hands_launch_overrides_the_config_file_only_when_asked():
    """launch_ros applies later parameter entries over earlier ones: an argument with a real
    default placed after the parameter file would always replace the user's YAML value."""
    tree = ast.parse((PKG / 'launch' / 'hands.launch.py').read_text())
    table = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                 and getattr(n.targets[0], 'id', '') == 'PARAMETER_ARGUMENTS')
    overrides = {k.value: v.elts[0].value for k, v in zip(table.keys, table.values)}
    defaults = _argument_defaults(tree)
    assert set(overrides) <= set(defaults), set(overrides) - set(defaults)
    assert set(overrides.values()) <= set(parameters.SPECS)
    for arg in overrides:
        assert defaults[arg] == "''", f'argument {arg} defaults to {defaults[arg]}, not empty'
    node = [n for n in _calls(tree, 'Node') if 'hand_pose_node' in _executables(n)]
    params = _kw(node[0], 'parameters').elts
    assert ast.unparse(params[0]) == "cfg['config']", 'the parameter file must come first'
    assert all(not isinstance(e, ast.Dict) for e in params[1:]), (
        'a literal dict after the parameter file always overrides it')


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_package_files_exist_and_are_installed(path):
    _, data = _setup()
    for folder, name in _share_paths(ast.parse(path.read_text())):
        assert (PKG / folder / name).is_file(), f'{folder}/{name} missing'
        assert any(dest.endswith(f"{folder}'") and any(
            fnmatch.fnmatch(f'{folder}/{name}', g) for g in globs) for dest, globs in data), (
            f'{folder}/{name} is not installed into share/ by setup.py')


def test_hands_yaml_lists_every_parameter_with_its_default():
    cfg = yaml.safe_load((PKG / 'config' / 'hands.yaml').read_text())
    values = cfg['/**']['ros__parameters']
    assert set(values) == set(parameters.SPECS)
    for name, spec in parameters.SPECS.items():
        assert values[name] == spec.default, name
        assert parameters.validate(name, values[name], running=False) is None
    text = (PKG / 'config' / 'hands.yaml').read_text().splitlines()
    for i, line in enumerate(text):  # each parameter line is preceded by its comment
        if line.startswith('    ') and not line.strip().startswith('#'):
            assert text[i - 1].strip().startswith('#'), line


def test_rviz_config_shows_image_markers_and_tf():
    rviz = yaml.safe_load((PKG / 'config' / 'hands.rviz').read_text())
    displays = {d['Class']: d for d in rviz['Visualization Manager']['Displays']}
    assert displays['rviz_default_plugins/Image']['Topic']['Value'] == 'hands/image'
    assert displays['rviz_default_plugins/MarkerArray']['Topic']['Value'] == 'hand_markers'
    assert 'rviz_default_plugins/TF' in displays


def test_launch_descriptions_build_where_launch_ros_is_installed():
    """Only meaningful in a ROS 2 workspace; here it checks the files at least compile."""
    for path in LAUNCH_FILES:
        compile(path.read_text(), str(path), 'exec')
    if importlib.util.find_spec('launch_ros') is None:
        return
    for path in LAUNCH_FILES:
        spec = importlib.util.spec_from_file_location(path.stem.replace('.', '_'), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.generate_launch_description().entities


def test_multiview_rviz_config_shows_the_fused_hands_in_world():
    rviz = yaml.safe_load((PKG / 'config' / 'multiview.rviz').read_text())
    manager = rviz['Visualization Manager']
    displays = {d['Class']: d for d in manager['Displays']}
    assert displays['rviz_default_plugins/MarkerArray']['Topic']['Value'] == '/fused/hand_markers'
    assert 'rviz_default_plugins/TF' in displays
    assert manager['Global Options']['Fixed Frame'] == 'world'
