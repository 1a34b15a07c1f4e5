"""`hand-pose-ros fuse` on the shared four-camera video: schema, names, refusals."""

from __future__ import annotations

import json

from conftest import shared_path
import cv2
from hand_pose_ros.cli.main import main
import pytest


def test_fuse_two_cameras_writes_world_hands(tmp_path) -> None:
    folder = shared_path('multiview', 'pose2sim_single')
    out = tmp_path / 'fused.json'
    rc = main(['fuse', '--calibration', str(folder / 'calibration.yaml'), '--json', str(out),
               '--max-frames', '4', '--no-progress', str(folder / 'cam01.mp4'),
               str(folder / 'cam02.mp4'), '--contact-sheet', str(tmp_path / 'sheet.png'),
               '--sheet-frame', '2'])
    assert rc == 0
    sheet = cv2.imread(str(tmp_path / 'sheet.png'))
    assert sheet is not None and sheet.shape[0] == 720 and sheet.shape[1] > 2 * 400
    doc = json.loads(out.read_text())
    assert doc['cameras'] == ['cam01', 'cam02'] and doc['fps'] == pytest.approx(60, abs=1)
    assert [f['frame'] for f in doc['frames']] == [0, 1, 2, 3]
    hands = [h for f in doc['frames'] for h in f['hands']]
    assert hands, 'the right hand is seen by both cameras on the first frames'
    for hand in hands:
        assert len(hand['keypoints_world']) == 21 and len(hand['keypoints_world'][0]) == 3
        assert len(hand['keypoint_confidence']) == 21
        assert set(hand['cameras']) <= {'cam01', 'cam02'}
        assert hand['method'] in ('triangulation', 'single_view')
        assert hand['handedness'] in ('left', 'right')
        if hand['method'] == 'triangulation':
            # The person stands within a few metres of the lab's origin.
            assert all(abs(v) < 4.0 for v in hand['keypoints_world'][0])


def test_fuse_refuses_a_camera_not_in_the_calibration(tmp_path, capsys) -> None:
    folder = shared_path('multiview', 'pose2sim_single')
    video = tmp_path / 'cam09.mp4'
    video.write_bytes((folder / 'cam01.mp4').read_bytes()[:10])
    with pytest.raises(SystemExit) as exc:
        main(['fuse', '--calibration', str(folder / 'calibration.yaml'), '--json',
              str(tmp_path / 'x.json'), str(video)])
    assert exc.value.code == 2
    assert "camera 'cam09' is not in the calibration" in capsys.readouterr().err
