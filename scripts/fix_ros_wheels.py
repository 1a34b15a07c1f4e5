"""Rewrite the build-machine paths that the ROS 2 PyPI wheels carry in their CMake exports.

The ros-<distro>-* wheels are built in a manylinux container whose Python lives in
/opt/python/cp311-cp311; their generated `*__rosidl_generator_pyExport.cmake` files keep that
container's Python and numpy include folders, so any interface package built against them
(hand_pose_msgs, tf2_msgs) fails to find Python.h. This rewrites those paths to the running
interpreter's. Idempotent: run it after every pip install into the venv.
"""

from __future__ import annotations

from pathlib import Path
import re
import sys
import sysconfig

# /opt/python/cp311-cp311/include/python3.11 and
# /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include
_PY_INCLUDE = re.compile(r'/opt/python/cp\d+-cp\d+t?/include/python\d+\.\d+t?')
_NUMPY_INCLUDE = re.compile(
    r'/opt/python/cp\d+-cp\d+t?/lib/python\d+\.\d+t?/site-packages/numpy/(?:_?core)/include')


def fix_file(path: Path, py_include: str, numpy_include: str) -> bool:
    """Rewrite one file; True when it changed."""
    text = path.read_text(errors='surrogateescape')
    new = _NUMPY_INCLUDE.sub(numpy_include, text)
    new = _PY_INCLUDE.sub(py_include, new)
    if new == text:
        return False
    path.write_text(new, errors='surrogateescape')
    return True


def main() -> int:
    import numpy

    prefix = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(sys.prefix)
    py_include = sysconfig.get_paths()['include']
    numpy_include = numpy.get_include()
    if not Path(py_include, 'Python.h').is_file():
        print(f'fix_ros_wheels: {py_include}/Python.h not found (install the Python headers)',
              file=sys.stderr)
        return 1
    changed = [p for p in (prefix / 'share').glob('*/cmake/*.cmake')
               if fix_file(p, py_include, numpy_include)]
    print(f'fix_ros_wheels: rewrote build-machine paths in {len(changed)} CMake file(s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
