"""The layers stay visible in the imports: the core never reaches into ROS, the CLI or the
runtimes' internals, no module borrows another's private names, and nothing installed
imports test code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'hand_pose_ros'
# Modules that hold pipeline geometry: pure maths on images and coordinates, usable by every
# runtime, so they must not depend on one.
GEOMETRY = ('anchors', 'roi', 'palm', 'tiles', 'landmarks', 'camera', 'anatomy')


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
            if name.rsplit('.', 1)[-1] in GEOMETRY:
                assert not module.startswith('hand_pose_ros.core.runtimes'), (
                    f'geometry module {name} imports a runtime ({module})')
        if module.startswith('hand_pose_ros') and module != name:
            private = [n for n in names if n.startswith('_') and not n.startswith('__')]
            assert not private, f'{name} imports private names {private} from {module}'


def test_no_sys_path_tricks() -> None:
    """Installed code never puts test folders on sys.path to borrow their helpers."""
    for path in SOURCES:
        text = path.read_text()
        assert not ('sys.path' in text and 'test' in text.split('sys.path', 1)[1][:200]), path
