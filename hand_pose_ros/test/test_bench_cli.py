"""`hand-pose-ros bench` machinery on a few real motion frames (our side only: timing the
official solution needs its own venv from PyPI, which `make bench` creates; speed goals are
read from the benchmark's output, never asserted in tests)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import shared_path
from hand_pose_ros.tools import bench
import pytest


def test_bench_rows_and_hands(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    code = bench.main([
        '--data', str(shared_path('motion')), '--no-reference', '--limit', '6',
        '--repeats', '1', '--warmup', '1', '--models', 'lite', '--detect-every', '3',
        '--json', str(out)])
    assert code == 0
    summary = json.loads(out.read_text())
    rows = {r['key']: r for r in summary['rows']}
    assert set(rows) == {'static-lite', 'tracking-lite', 'tracking-lite-every-3'}
    # seq0 opens with two hands in view (the official video golden agrees).
    assert rows['static-lite']['ours_hands_per_frame'] == 2.0
    assert rows['static-lite']['detector_ran_fraction'] == 1.0
    assert all(r['ours']['median'] > 0 and r['official'] == {} for r in rows.values())
    table = capsys.readouterr().out
    assert '| tracking | lite | every 3 frames |' in table


def test_multicam_arguments_are_delegated():
    assert bench._wants_multicam(['--cameras', '4'])
    assert bench._wants_multicam(['--runtime', 'torch'])
    assert not bench._wants_multicam(['--runtime', 'litert', '--models', 'full'])


def test_cameras_alone_delegates_with_bench_flag_names_on_litert_without_torch(tmp_path):
    """`bench --cameras` takes bench's own --models/--max-hands, runs litert, needs no torch."""
    out = tmp_path / 'multicam.json'
    # sys.modules[name] = None makes `import torch` fail, as where torch is not installed.
    code = ('import sys; sys.modules["torch"] = None; from hand_pose_ros.tools import bench; '
            'sys.exit(bench.main(sys.argv[1:]))')
    proc = subprocess.run(
        [sys.executable, '-c', code, '--cameras', '2', '--models', 'lite', '--max-hands', '2',
         '--steps', '2', '--warmup', '1', '--data', str(shared_path('motion')),
         '--json', str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(out.read_text())
    assert [(r['runtime'], r['device'], r['model'], r['cameras']) for r in summary['rows']] == [
        ('litert', 'cpu', 'lite', 2)]
    assert summary['rows'][0]['hands_per_frame'] > 0
    assert '| litert | cpu | fp32 | lite | 2 |' in proc.stdout


def test_micro_needs_the_torch_runtime():
    with pytest.raises(SystemExit, match='--micro times the torch landmark model'):
        bench.main(['--cameras', '1', '--micro'])


def test_reference_venv_never_deletes_a_folder_it_did_not_make(tmp_path):
    from hand_pose_ros.tools.reference import ensure_reference_venv

    mine = tmp_path / 'my-venv'
    mine.mkdir()
    (mine / 'notes.txt').write_text('keep me')
    with pytest.raises(RuntimeError, match='refusing to delete it'):
        ensure_reference_venv(mine)
    assert (mine / 'notes.txt').read_text() == 'keep me'


def test_the_benchmarks_share_a_module_instead_of_importing_each_other():
    """bench delegates to bench_multicam, so bench_multicam must not import bench back."""
    import ast
    import inspect

    from hand_pose_ros.tools import bench_multicam

    tree = ast.parse(inspect.getsource(bench_multicam))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert 'hand_pose_ros.tools.bench' not in imported
    assert 'hand_pose_ros.tools.bench_common' in imported


@pytest.mark.parametrize('argv', [
    ['--num-threads', '0'], ['--threads', '65'], ['--max-hands', '9'], ['--precision', 'int4'],
    ['--detect-every', '0']])
def test_bench_setting_flags_check_as_the_settings_do(argv, capsys):
    """The flags are derived from the settings: their ranges and choices, their messages."""
    with pytest.raises(SystemExit):
        bench.main([*argv, '--no-reference'])
    assert 'error' in capsys.readouterr().err
