"""The layers stay visible in the imports: the core never reaches into ROS, the CLI or the
tools, its stages import only the shared vocabulary and the stages before them, geometry
never depends on a runtime, no module borrows another's private names, there is no import
cycle, and nothing installed imports test code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'hand_pose_ros'
# Modules that hold pipeline geometry: pure maths on images and coordinates, usable by every
# runtime, so they must not depend on one.
GEOMETRY = ('detection.anchors', 'detection.roi', 'detection.palm', 'detection.tiles',
            'detection.landmarks', 'metric.camera', 'anatomy')
# The core's rooms, in pipeline order (core/__init__.py): each may import the shared
# vocabulary and the rooms before it, never one after it.
STAGES = ('models', 'inputs', 'detection', 'metric', 'tracking', 'fusion', 'meaning')
VOCABULARY = ('anatomy', 'results', 'settings', 'options', 'validity')
CORE = 'hand_pose_ros.core.'


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text())
    package = _module_name(path).rsplit('.', 1)[0] if path.name != '__init__.py' \
        else _module_name(path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ''
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                module = '.'.join(base + ([module] if module else []))
            found.append((module, [alias.name for alias in node.names]))
    return found


SOURCES = sorted(PACKAGE.rglob('*.py'))


def test_sources_found() -> None:
    assert len(SOURCES) > 20


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layering(path: Path) -> None:
    name = _module_name(path)
    for module, names in _imports(path):
        assert not module.startswith(('test', 'conftest')), f'{name} imports test code'
        assert module.split('.')[0] != 'test'
        if name.startswith('hand_pose_ros.core'):
            assert not module.startswith(('hand_pose_ros.ros', 'hand_pose_ros.cli',
                                          'hand_pose_ros.tools', 'rclpy')), (
                f'{name} (core) imports {module}')
            if name.removeprefix(CORE) in GEOMETRY:
                assert not module.startswith(CORE + 'models.runtimes'), (
                    f'geometry module {name} imports a runtime ({module})')
            assert _may_import(name, module), f'{name} imports {module} against the stages'
        if module.startswith('hand_pose_ros') and module != name:
            private = [n for n in names if n.startswith('_') and not n.startswith('__')]
            assert not private, f'{name} imports private names {private} from {module}'


def _room(module: str) -> str | None:
    """The core room (stage or vocabulary) a module belongs to; None outside the core."""
    if not module.startswith(CORE):
        return None
    first = module.removeprefix(CORE).split('.')[0]
    return first if first in STAGES + VOCABULARY else 'orchestration'


def _may_import(name: str, module: str) -> bool:
    """Whether core module `name` may import `module` under the stage order."""
    room, target = _room(name), _room(module)
    if room is None or target is None or room == target or room == 'orchestration':
        return True
    if target == 'orchestration':
        return False
    if room in VOCABULARY:
        # The vocabulary imports only itself (and options names the model variants).
        return target in VOCABULARY or (
            room == 'options' and module.startswith(CORE + 'models.catalog'))
    if target in VOCABULARY:
        return True
    return STAGES.index(target) < STAGES.index(room)


def test_every_core_module_is_in_a_room() -> None:
    """The flat core is gone: besides the vocabulary, only the orchestrators stay on top."""
    top = sorted(p.stem for p in (PACKAGE / 'core').glob('*.py') if p.stem != '__init__')
    assert set(top) - set(VOCABULARY) == {
        'tracker', 'tracker_protocol', 'mediapipe_tracker', 'stream'}, top
    rooms = sorted(p.name for p in (PACKAGE / 'core').iterdir()
                   if p.is_dir() and (p / '__init__.py').exists())
    assert rooms == sorted(STAGES)
    for room in rooms:
        doc = ast.get_docstring(ast.parse((PACKAGE / 'core' / room / '__init__.py').read_text()))
        assert doc and 'import' in doc.lower(), f'core/{room}/__init__.py: what may it import?'


def test_stage_order_rule_rejects_a_backward_import() -> None:
    """The rule itself: a later stage's import in an earlier one, and the reverse."""
    assert not _may_import(CORE + 'detection.palm', CORE + 'tracking.tracks')
    assert not _may_import(CORE + 'models.catalog', CORE + 'detection.roi')
    assert not _may_import(CORE + 'results', CORE + 'metric.depth')
    assert not _may_import(CORE + 'metric.depth', CORE + 'tracker')
    assert _may_import(CORE + 'tracking.skeleton', CORE + 'metric.scale')
    assert _may_import(CORE + 'tracker', CORE + 'meaning.views')
    assert _may_import(CORE + 'fusion.fuser', CORE + 'tracking.skeleton')
    assert not _may_import(CORE + 'fusion.fuser', CORE + 'meaning.gestures')
    assert not _may_import(CORE + 'tracking.tracks', CORE + 'fusion.fuser')


def _module_imports(path: Path) -> set[str]:
    """Package modules imported at module level (function-level imports are lazy)."""
    names = {_module_name(p) for p in SOURCES}
    deps = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f'{node.module}.{alias.name}'
                deps.add(full if full in names else node.module)
        elif isinstance(node, ast.Import):
            deps.update(alias.name for alias in node.names)
    return {d for d in deps if d in names}


def test_no_import_cycles() -> None:
    """Module-level imports between the package's modules form no cycle."""
    graph = {_module_name(p): _module_imports(p) - {_module_name(p)} for p in SOURCES}
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        for dep in sorted(graph.get(node, ())):
            if dep in stack or dep == node:
                raise AssertionError('import cycle: ' + ' -> '.join(stack + [node, dep]))
            if dep not in done:
                visit(dep, stack + [node])
        done.add(node)
    for node in sorted(graph):
        visit(node, [])


def test_no_sys_path_tricks() -> None:
    """Installed code never puts test folders on sys.path to borrow their helpers."""
    for path in SOURCES:
        text = path.read_text()
        assert not ('sys.path' in text and 'test' in text.split('sys.path', 1)[1][:200]), path
