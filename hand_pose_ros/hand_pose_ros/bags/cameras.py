"""
The cameras of a bag: which image topics are processed, with their CameraInfo and depth.

A Camera also holds its per-run state (tracking state, markers, CameraInfo and depth
buffers); the rules are in find_cameras and in docs/recordings.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hand_pose_ros.core.tracker import TrackerState
from hand_pose_ros.ros.markers import MarkerTracker
from hand_pose_ros.ros.parameters import NodeOptions
from hand_pose_ros.ros.stamp_match import StampBuffer

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
INFO_BUFFER = 30
DEPTH_BUFFER = 10


@dataclass
class Camera:
    """One image stream of a bag: where it comes from, where its outputs go, its state."""

    name: str  # output namespace ('/cam'), or the image topic when a namespace has several
    image_topic: str
    compressed: bool
    info_topic: str | None
    depth_topic: str | None
    state: TrackerState | None = None
    markers: MarkerTracker = field(default_factory=MarkerTracker)
    infos: StampBuffer = field(default_factory=lambda: StampBuffer(INFO_BUFFER))
    depths: StampBuffer = field(default_factory=lambda: StampBuffer(DEPTH_BUFFER))
    last_stamp_ns: int | None = None
    robots: dict[str, Any] | None = None  # side -> HandRetargeter (--retarget)

    def topic(self, leaf: str) -> str:
        return f'{self.name.rstrip("/")}/{leaf}'


def _parent(topic: str) -> str:
    return topic.rsplit('/', 1)[0] or '/'


def find_cameras(topics: dict[str, str], node: NodeOptions,
                 namespaces: Sequence[str] = (), image_topics: Sequence[str] = ()
                 ) -> list[Camera]:
    """
    Return the image streams to process, from the bag's {topic: type}, in topic order.

    Automatic: every Image and CompressedImage topic except depth images and a compressed
    copy of a raw topic that is also recorded (`<raw>/compressed`, image_transport's
    republisher); its namespace is the topic's parent. `namespaces` keeps those in the given
    namespaces; `image_topics` names the topics instead (any type: one that is not an image
    is counted as bad input). CameraInfo is `<namespace>/<camera_info_topic>`, depth
    `<namespace>/<depth_topic>` or, when depth_topic is '', the namespace's Image topic
    with 'depth' in its name.
    """
    if image_topics:
        chosen = list(image_topics)
    else:
        chosen = []
        for topic, kind in sorted(topics.items()):
            if kind == IMAGE and 'depth' not in topic.lower():
                chosen.append(topic)
            elif kind == COMPRESSED and topics.get(topic.removesuffix('/compressed')) != IMAGE:
                chosen.append(topic)
        if namespaces:
            wanted = {'/' + n.strip('/') for n in namespaces}
            chosen = [t for t in chosen if _namespace(t, topics) in wanted]
    by_ns: Counter = Counter(_namespace(t, topics) for t in chosen)
    cameras = []
    for topic in chosen:
        ns = _namespace(topic, topics)
        info = f'{ns.rstrip("/")}/{node.camera_info_topic}'
        depth = _depth_topic(ns, topics, node.depth_topic)
        cameras.append(Camera(
            name=ns if by_ns[ns] == 1 else topic, image_topic=topic,
            compressed=topics.get(topic) == COMPRESSED,
            info_topic=info if topics.get(info) == CAMERA_INFO else None, depth_topic=depth))
    return cameras


def _namespace(topic: str, topics: dict[str, str]) -> str:
    """`/cam/image_raw` and `/cam/image_raw/compressed` are both camera `/cam`."""
    if topics.get(topic) == COMPRESSED and topic.endswith('/compressed'):
        topic = topic.removesuffix('/compressed')
    return _parent(topic)


def _depth_topic(ns: str, topics: dict[str, str], configured: str) -> str | None:
    prefix = ns.rstrip('/') + '/'
    if configured:
        topic = prefix + configured.strip('/')
        return topic if topics.get(topic) == IMAGE else None
    found = sorted(t for t, k in topics.items()
                   if k == IMAGE and t.startswith(prefix) and 'depth' in t[len(prefix):].lower())
    return found[0] if found else None
