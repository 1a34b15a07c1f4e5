"""
process-bag on Ray: one task per bag, or per camera stream of a bag with several cameras.

A bag with one camera (or none, or one that cannot be opened) is one task that runs exactly
the serial code (cli.process_bag.process_bags) on it; each bag starts from fresh tracking
states in the serial run too. A bag with several cameras is one task per camera, each with
its own tracker and that camera's tracking state (BagRunner.record: the camera's outputs
and counts per message, in a record file beside OUT), then one task that walks the bag as
the serial run does and writes, at each camera message, that camera's recorded outputs
(BagRunner.run with the record files; no models loaded). A camera's tracking state in the
serial run depends on its own frames only, so either way the outputs are byte for byte the
serial run's. Ray is an optional extra (requirements/ray.txt, WITH_RAY in
scripts/setup.sh).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
import shutil
from typing import Any


def _one_bag(bag: str, out: str, job: dict[str, Any]) -> Any:
    from hand_pose_ros.cli.process_bag import process_bags
    return process_bags([Path(bag)], [Path(out)], **job)[0]


def _one_stream(bag: str, camera: int, path: str, job: dict[str, Any]) -> str:
    from hand_pose_ros.cli.process_bag import bag_runner
    with bag_runner(**job) as runner:
        runner.record(Path(bag), camera, Path(path))
    return path


def _merge(bag: str, out: str, job: dict[str, Any], *paths: str) -> Any:
    from hand_pose_ros.cli.process_bag import bag_runner
    try:
        with bag_runner(**job, track=False) as runner:
            return runner.run(Path(bag), Path(out), [Path(p) for p in paths])
    finally:
        shutil.rmtree(records_dir(Path(out)), ignore_errors=True)


def records_dir(out: Path) -> Path:
    """Return where the camera tasks of the bag written to `out` put their record files."""
    return out.parent / f'.{out.name}.streams'


def camera_counts(bags: Sequence[Path], job: dict[str, Any]) -> list[int]:
    """Return how many cameras process-bag finds in each bag (0: none, or unreadable)."""
    from hand_pose_ros.cli.process_bag import bag_runner
    with bag_runner(**job, track=False) as runner:
        return [len(runner.cameras(Path(b)) or ()) for b in bags]


def process_bags_on_ray(bags: Sequence[Path], outs: Sequence[Path], job: dict[str, Any],
                        address: str = 'local', workers: int | None = None) -> list[Any]:
    """
    Run the bags, or the cameras of a bag with several, as Ray tasks (one CPU each).

    Returns the bags' Summaries in input order. `address` 'local' starts a local Ray
    (`workers` CPUs, default all) that ends with the call; anything else is passed to
    ray.init (e.g. 'auto' or 'ray://head:10001') and the cluster is left running. The paths
    must be visible to every worker (a shared file system on a cluster).
    """
    if job['values'].get('fusion_frame'):
        raise ValueError('--fusion-frame (fusion_frame) does not run with --ray: fusion needs '
                         "every camera's tracked frames in one process; run without --ray")
    try:
        import ray
    except ImportError:
        raise RuntimeError('--ray needs the ray extra: pip install -r requirements/ray.txt '
                           '(or WITH_RAY=1 make setup)') from None
    counts = camera_counts(bags, job)
    local = address == 'local'
    started = not ray.is_initialized()
    if started:
        if local:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        whole = ray.remote(num_cpus=1)(_one_bag)
        stream = ray.remote(num_cpus=1)(_one_stream)
        merge = ray.remote(num_cpus=1)(_merge)
        refs = []
        for bag, out, count in zip(bags, outs, counts):
            bag, out = Path(bag).resolve(), Path(out).resolve()
            if count < 2:
                refs.append(whole.remote(str(bag), str(out), job))
                continue
            folder = records_dir(out)
            streams = [stream.remote(str(bag), k, str(folder / f'camera{k}.records'), job)
                       for k in range(count)]
            refs.append(merge.remote(str(bag), str(out), job, *streams))
        return ray.get(refs)
    finally:
        if started:
            ray.shutdown()
