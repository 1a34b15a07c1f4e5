"""`hand-pose-ros eval-hands`: the synthetic scenes put the truth where the pixels are, and
columns are tracker settings (so a new setting is one more column). No model runs here."""

from __future__ import annotations

import argparse

from hand_pose_ros.cli.main import SUBCOMMANDS
from hand_pose_ros.tools import eval_hands
import numpy as np
import pytest


def test_registered_and_columns_parse() -> None:
    assert 'eval-hands' in SUBCOMMANDS
    assert eval_hands._column('default') == ('default', {})
    assert eval_hands._column('wide:detection_tiles=1,tile_detector=full') == (
        'wide', {'detection_tiles': 1, 'tile_detector': 'full'})
    with pytest.raises(argparse.ArgumentTypeError):
        eval_hands._column('x:not_a_setting=1')


def test_placed_hand_keeps_its_pixels_under_its_keypoints() -> None:
    """A bright square with its corners as 'keypoints', placed at 50 px in a 640x480 frame:
    the moved keypoints span 50 px and sit on the bright pixels."""
    image = np.zeros((200, 200, 3), np.uint8)
    image[50:150, 50:150] = 255
    truth = np.array([[50.0, 50.0, 1.0], [149.0, 149.0, 1.0], [100.0, 100.0, 1.0]])
    background = np.zeros((480, 640, 3), np.uint8)
    frame, moved = eval_hands.place(image, truth, 100.0, 50.0, (640, 480), background,
                                    np.random.default_rng(0))
    assert frame.shape == (480, 640, 3)
    assert np.ptp(moved[:, 0]) == pytest.approx(49.5)
    x, y = moved[2, :2].astype(int)
    assert frame[y, x].min() == 255
    assert (moved[:, :2] >= 0).all() and (moved[:, 0] < 640).all() and (moved[:, 1] < 480).all()


def test_body_column_and_timing_part_registered() -> None:
    assert eval_hands._column('body') == ('body', {'body_rois': True})
    assert 'timing' in eval_hands.PARTS
    args = eval_hands.build_parser().parse_args(['--part', 'timing', '--column', 'base'])
    assert args.part == ['timing']


def test_size_plot_from_results_read_back(tmp_path) -> None:
    """The size curve plots from a results JSON read back (hand sizes as string keys)."""
    import json

    size = {'1280x720 photo': {16: {'default/full': [0.0, 0.0]},
                               48: {'default/full': [0.8, 0.75]}}}
    path = tmp_path / 'curve.png'
    eval_hands.plot_size(json.loads(json.dumps(size)), path)
    assert path.stat().st_size > 1000


def test_degradations_keep_the_frame_and_do_what_they_say() -> None:
    """Each degradation returns a BGR frame of the same size; the same seed, the same frame."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (60, 80, 3), np.uint8)
    for kind, levels in eval_hands.DEGRADATIONS.items():
        for level in levels or (None,):
            out = eval_hands.degrade(image, kind, level, np.random.default_rng(1))
            again = eval_hands.degrade(image, kind, level, np.random.default_rng(1))
            assert out.shape == image.shape and out.dtype == np.uint8, (kind, level)
            np.testing.assert_array_equal(out, again)
            if kind in ('grey', 'ir'):
                np.testing.assert_array_equal(out[..., 0], out[..., 2])
    dark = eval_hands.degrade(image, 'dark', 0.0625, np.random.default_rng(1))
    assert dark.mean() < 0.6 * image.mean()
    args = eval_hands.build_parser().parse_args(
        ['--part', 'degrade', '--column', 'default', '--column', 'mediapipe'])
    assert dict(args.column) == {'default': {}, 'mediapipe': {}}


def test_halves_split_every_set_in_two_disjoint_parts() -> None:
    names = [f'bodies/{n:04d}.jpg' for n in range(200)]
    tune = {n for n in names if eval_hands.in_half(n, 'tune')}
    report = {n for n in names if eval_hands.in_half(n, 'report')}
    assert not tune & report and tune | report == set(names)
    assert 60 < len(tune) < 140
    assert all(eval_hands.in_half(n, 'all') for n in names)
    # A motion sequence's crops are one source: near-identical frames stay in one half.
    assert eval_hands._source('motion/seq1/0008-head') == 'motion/seq1'
    assert eval_hands._source('ochuman/000817.jpg#1-head') == 'ochuman/000817.jpg'
    assert 'twohands' in eval_hands.PARTS


def test_both_halves_and_kept_summary() -> None:
    """--half both runs the tuning then the report half; kept compares each checked column
    with the same model's unchecked one over the pairs and twohands, and lists false
    hands."""
    from hand_pose_ros.tools import eval_halves

    assert eval_halves.halves_of('both') == ('tune', 'report')
    assert eval_halves.halves_of('report') == ('report',)
    args = eval_hands.build_parser().parse_args(['--part', 'pairs', '--half', 'both'])
    assert args.half == 'both'
    results = {
        'pairs': {0.0: {'of': 24, 'unchecked/full': 16, 'default/full': 15},
                  0.5: {'of': 24, 'unchecked/full': 11, 'default/full': 11}},
        'twohands': {'found': {'unchecked/full': 111, 'default/full': 111}},
        'false': {'hands': {'unchecked/full': 6, 'default/full': 2}},
    }
    summary = eval_halves.kept(results)
    assert list(summary) == ['default/full']
    assert summary['default/full'] == {'true_hands': 137, 'unchecked_true_hands': 138,
                                       'kept': round(137 / 138, 3), 'false_hands': 2}
