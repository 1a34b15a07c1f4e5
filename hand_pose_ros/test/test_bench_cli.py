"""`hand-pose-ros bench` machinery on a few real motion frames (our side only: timing the
official solution needs its own venv from PyPI, which `make bench` creates; speed goals are
read from the benchmark's output, never asserted in tests)."""

from __future__ import annotations

import json

from conftest import shared_path

from hand_pose_ros.cli import bench


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
