"""
Repack installed distributions as wheels: the offline way to a carried-wheel folder.

CI's check of scripts/gpu_check.sh installs from a wheel folder as the GPU machine does,
but must not depend on the network or on pip's cache at test time; the venv already has
the exact pinned versions installed, and RECORD lists each distribution's files, so the
wheel can be rebuilt from them (python scripts/repack_installed.py DEST NAME[==VERSION]...).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
import re
import sys
import zipfile


def repack(spec: str, dest: Path) -> Path:
    """Write NAME's installed files as DEST/NAME-VERSION-TAG.whl; the pin must match."""
    name, _, wanted = spec.partition('==')
    dist = metadata.distribution(name)
    if wanted and dist.version != wanted:
        raise SystemExit(f'{name}: installed {dist.version}, pinned {wanted}')
    wheel_info = dist.read_text('WHEEL') or ''
    tags = re.findall(r'^Tag: (\S+)$', wheel_info, re.M)
    if not tags:
        raise SystemExit(f'{name}: no WHEEL tag (not installed from a wheel)')
    norm = re.sub(r'[-_.]+', '_', dist.metadata['Name'])
    target = dest / f'{norm}-{dist.version}-{tags[0]}.whl'
    root = Path(dist.locate_file(''))
    with zipfile.ZipFile(target, 'w', zipfile.ZIP_DEFLATED) as zf:
        for rel in dist.files or []:
            parts = Path(rel).parts
            if parts[0] == '..' or '__pycache__' in parts:
                continue  # scripts outside site-packages; bytecode is rebuilt on install
            path = root / rel
            if path.is_file():
                zf.write(path, str(rel))
    return target


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    dest = Path(argv[0])
    dest.mkdir(parents=True, exist_ok=True)
    for spec in argv[1:]:
        print(f'repacked {repack(spec, dest).name}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
