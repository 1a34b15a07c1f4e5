"""`hand-pose-ros detect`: the JSON schema on images, folders and a video."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

from conftest import shared_path
import cv2
from hand_pose_ros.cli.main import main
from hand_pose_ros.core.meaning.hand_frames import joint_angles, mano_keypoints
import numpy as np

HAND_KEYS = {'id', 'handedness', 'handedness_score', 'score', 'keypoints_2d', 'keypoints_3d',
             'keypoints_camera', 'keypoints_mano', 'joint_angles', 'palm_normal', 'gesture'}


def _check_hand(hand: dict, width: int, height: int, camera: bool) -> None:
    assert set(hand) == HAND_KEYS
    assert isinstance(hand['id'], int)
    assert hand['handedness'] in ('left', 'right')
    assert 0.5 <= hand['handedness_score'] <= 1.0
    assert 0.0 <= hand['score'] <= 1.0
    kp2 = np.asarray(hand['keypoints_2d'])
    assert kp2.shape == (21, 2)
    assert np.all((kp2 > -0.5 * width) & (kp2 < 1.5 * max(width, height)))
    kp3 = np.asarray(hand['keypoints_3d'])
    assert kp3.shape == (21, 3)
    assert np.abs(kp3).max() < 0.3  # metres, hand-centric
    if camera and hand['keypoints_camera'] is not None:
        cam = np.asarray(hand['keypoints_camera'])
        assert cam.shape == (21, 3)
        assert np.all(cam[:, 2] > 0)
    elif not camera:
        assert hand['keypoints_camera'] is None
    assert hand['gesture'] is None or isinstance(hand['gesture'], str)
    # The retargeting views: the core's, on the hand's own world landmarks.
    mano = np.asarray(hand['keypoints_mano'])
    assert mano.shape == (21, 3)
    np.testing.assert_allclose(mano, mano_keypoints(kp3, hand['handedness']), atol=5e-5)
    np.testing.assert_allclose(hand['joint_angles'], joint_angles(kp3, hand['handedness']),
                               atol=2e-3)
    assert hand['palm_normal'] is None or abs(np.linalg.norm(hand['palm_normal']) - 1) < 1e-3


def test_detect_folder_and_image(tmp_path: Path, annotations: dict) -> None:
    out = tmp_path / 'out.json'
    folder = shared_path('hands')
    rhd = shared_path('hands', 'rhd', '00111.png')
    assert main(['detect', '--model', 'lite', '--json', str(out), str(folder), str(rhd),
                 '--camera', '320,320,160,160', '--no-progress']) == 0
    doc = json.loads(out.read_text())
    assert set(doc) == {'images'}
    entries = doc['images']
    assert len(entries) == len(annotations['images']) + 1
    assert {e['file'] for e in entries[:-1]} == {im['file'] for im in annotations['images']}
    assert entries[-1]['file'] == str(rhd)
    sizes = {im['file']: (im['width'], im['height']) for im in annotations['images']}
    for entry in entries:
        assert set(entry) == {'file', 'width', 'height', 'hands'}
        if entry['file'] in sizes:
            assert (entry['width'], entry['height']) == sizes[entry['file']]
        for hand in entry['hands']:
            _check_hand(hand, entry['width'], entry['height'], camera=True)
    # RHD is not mirrored: anatomical handedness from the annotations.
    assert entries[-1]['hands'][0]['handedness'] == 'left'


def test_detect_refine_and_tiles_zero_give_mediapipe_single_pass(
        tmp_path: Path, golden_static: dict) -> None:
    """`--landmark-refinement 0 --detection-tiles 0` is official MediaPipe's static output
    (within the parity tolerance); the default refines the landmarks, moving them off it."""
    rhd = shared_path('hands', 'rhd', '01111.png')
    gold = next(e for e in golden_static['models']['full'] if e['file'] == 'rhd/01111.png')
    width, height = cv2.imread(str(rhd)).shape[1::-1]
    ref = np.asarray(gold['hands'][0]['landmarks_norm'])[:, :2] * (width, height)
    size = np.ptp(ref, axis=0).max()
    diffs = {}
    single = ['--landmark-refinement', '0', '--detection-tiles', '0']
    for name, extra in (('single', single), ('default', [])):
        out = tmp_path / f'{name}.json'
        assert main(['detect', '--json', str(out), str(rhd), '--no-progress', *extra]) == 0
        hands = json.loads(out.read_text())['images'][0]['hands']
        assert len(hands) == 1
        ours = np.asarray(hands[0]['keypoints_2d'])
        diffs[name] = np.linalg.norm(ours - ref, axis=1).mean() / size
    assert diffs['single'] <= 0.01
    assert diffs['default'] > 0.01


def test_detect_video_tracking(tmp_path: Path) -> None:
    files = sorted(shared_path('motion', 'seq2').glob('*.jpg'))[:12]
    first = cv2.imread(str(files[0]))
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 30,
                             (first.shape[1], first.shape[0]))
    for f in files:
        writer.write(cv2.imread(str(f)))
    writer.release()
    out = tmp_path / 'video.json'
    assert main(['detect', '--running-mode', 'video', '--json', str(out), str(video),
                 '--no-progress']) == 0
    entries = json.loads(out.read_text())['images']
    assert [e['frame'] for e in entries] == list(range(12))
    assert all(e['file'] == str(video) for e in entries)
    ids = [[h['id'] for h in e['hands']] for e in entries]
    assert all(i == ids[0] for i in ids) and len(ids[0]) == 1  # one hand, one stable id
    for entry in entries:
        for hand in entry['hands']:
            _check_hand(hand, entry['width'], entry['height'], camera=False)


def test_detect_rejects_bad_arguments(tmp_path: Path) -> None:
    exe = [sys.executable, '-m', 'hand_pose_ros.cli', 'detect', '--json', str(tmp_path / 'o')]
    for extra in (['--camera', '1,2,3', 'x.jpg'], [str(tmp_path / 'missing.jpg')],
                  ['--model', 'huge', 'x.jpg']):
        proc = subprocess.run(exe + extra, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2
        assert 'error' in proc.stderr


def test_detect_without_models_says_how_to_fetch_them(tmp_path: Path) -> None:
    """A missing model is an environment problem: one error line naming the fix, no traceback."""
    env = dict(os.environ, HAND_POSE_ROS_MODEL_DIR=str(tmp_path / 'no-models'))
    image = shared_path('hands', 'rhd', '00111.png')
    for runtime in ('litert', 'torch'):
        proc = subprocess.run(
            [sys.executable, '-m', 'hand_pose_ros.cli', 'detect', '--runtime', runtime,
             '--json', str(tmp_path / 'o.json'), str(image), '--no-progress'],
            capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 1, proc.stderr
        assert 'Traceback' not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('hand-pose-ros detect: error:'), lines
        assert 'is missing' in lines[0] and '`hand-pose-ros fetch-models`' in lines[0]
        assert not (tmp_path / 'o.json').exists()


def test_detect_torch_runtime_without_torch_names_the_requirements(tmp_path: Path) -> None:
    # sys.modules[name] = None makes `import torch` raise ImportError, as where it is absent.
    code = ('import sys; sys.modules["torch"] = None; from hand_pose_ros.cli.main import main; '
            'sys.exit(main(sys.argv[1:]))')
    image = shared_path('hands', 'rhd', '00111.png')
    proc = subprocess.run(
        [sys.executable, '-c', code, 'detect', '--runtime', 'torch', '--json',
         str(tmp_path / 'o.json'), str(image), '--no-progress'],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert 'Traceback' not in proc.stderr
    assert 'pip install -r requirements/torch.txt' in proc.stderr
