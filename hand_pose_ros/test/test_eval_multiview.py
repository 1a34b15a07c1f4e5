"""`hand-pose-ros eval-multiview`: its measures on scenes whose answer is known."""

from __future__ import annotations

from hand_pose_ros.cli.main import SUBCOMMANDS
from hand_pose_ros.core.fusion.fuser import FusionOptions
from hand_pose_ros.tools import eval_multiview
from hand_pose_ros.tools import multiview_synthetic as syn
import numpy as np


def _sets(frames: int = 6) -> tuple[list, dict]:
    rng = np.random.default_rng(3)
    rig = syn.teleop_rig(4, rng)
    right = syn.random_hand(rng, centre=np.array([0.0, 0.12, 0.0]))
    left = syn.random_hand(rng, centre=np.array([0.0, -0.12, 0.0]), mirrored=True)
    sets = []
    for _ in range(frames):
        views: dict = {name: [] for name in rig}
        for index, (points, side) in enumerate(((right, 'right'), (left, 'left'))):
            for name, view in syn.observe(rig, points, rng, noise=0.01, handedness=side,
                                          index=index).items():
                views[name].append(view)
        sets.append(views)
    return sets, rig


def test_verb_is_registered() -> None:
    assert 'eval-multiview' in SUBCOMMANDS and 'fuse' in SUBCOMMANDS


def test_leave_one_out_is_small_on_consistent_views_and_baselines_agree() -> None:
    sets, rig = _sets()
    report = eval_multiview.leave_one_out(sets, rig, 30.0, FusionOptions())
    per_det = report['per_held_out_detection']
    assert per_det['fused']['n'] == 4 * 6 * 2  # every held-out detection explained
    assert per_det['fused']['median'] < 0.05
    assert per_det['two_view_label_pairs']['median'] < 0.05
    assert per_det['best_pair_oracle']['median'] <= per_det['two_view_label_pairs']['median']
    assert report['pnp_track_scale_m']['n'] > 0


def test_coverage_counts_sides_seen_by_two_cameras() -> None:
    sets, rig = _sets(frames=12)
    out = eval_multiview.all_cameras(sets, rig, 30.0)
    assert out['tracked']['frames_side_seen_by_2plus'] == 24
    assert out['tracked']['fused_share'] == 1.0
    assert out['tracked']['bone_length_cv_after_lock_frames'] is None  # too few frames
    assert out['raw']['bone_length_cv'] < 0.05


def test_capture_offsets_of_a_moving_hand_cost_what_the_motion_explains() -> None:
    """Noise free: synchronized cameras give the moving hand exactly; 0/10/33 ms late
    captures put the wrist off by more, but within the hand's travel in 33 ms."""
    raw = FusionOptions(smoothing=False, skeleton_lock=False)
    out = eval_multiview.moving_hand(20, np.random.default_rng(4), raw, noise=0.0)
    for speed in eval_multiview.MOVING_SPEEDS_M_S:
        synced = out[f'{speed} m/s, offsets 0/0/0 ms']
        late = out[f'{speed} m/s, offsets 0/10/33 ms']
        assert synced['n'] == late['n'] == 20, out
        assert synced['p90'] < 0.01, synced  # mm: exact up to the solver
        travel_mm = speed * 33.0
        assert 0.05 * travel_mm < late['median'] < travel_mm, (speed, late)
