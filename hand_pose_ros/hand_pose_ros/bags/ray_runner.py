"""
process-bag on Ray: one bag per task, its tracker and tracking states kept inside the task.

A task runs exactly the serial code (cli.process_bag.process_bags) on its one bag, and each
bag starts from fresh tracking states in the serial run too, so the outputs are byte for
byte the serial run's. Ray is an optional extra (requirements/ray.txt, WITH_RAY in
scripts/setup.sh).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _one_bag(bag: str, out: str, job: dict[str, Any]) -> Any:
    from hand_pose_ros.cli.process_bag import process_bags
    return process_bags([Path(bag)], [Path(out)], **job)[0]


def process_bags_on_ray(bags: Sequence[Path], outs: Sequence[Path], job: dict[str, Any],
                        address: str = 'local', workers: int | None = None) -> list[Any]:
    """
    Run each bag as a Ray task (one CPU each); returns their Summaries in input order.

    `address` 'local' starts a local Ray (`workers` CPUs, default all) that ends with the
    call; anything else is passed to ray.init (e.g. 'auto' or 'ray://head:10001') and the
    cluster is left running. The paths must be visible to every worker (a shared file
    system on a cluster).
    """
    try:
        import ray
    except ImportError:
        raise RuntimeError('--ray needs the ray extra: pip install -r requirements/ray.txt '
                           '(or WITH_RAY=1 make setup)') from None
    local = address == 'local'
    started = not ray.is_initialized()
    if started:
        if local:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(_one_bag)
        refs = [task.remote(str(Path(b).resolve()), str(Path(o).resolve()), job)
                for b, o in zip(bags, outs)]
        return ray.get(refs)
    finally:
        if started:
            ray.shutdown()
