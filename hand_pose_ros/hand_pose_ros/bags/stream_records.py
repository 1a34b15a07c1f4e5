"""
The record file of one camera stream: what a task tracking one camera of a bag hands over.

A bag with several cameras runs on Ray as one task per camera (BagRunner.record) and one
task that writes the output bag (BagRunner.run with the record files), which walks the bag
exactly as the serial run does and, at each message of a camera, takes the next record of
that camera instead of tracking: what the message counted (frames, hands, bad input by
cause) and the output messages it wrote, in order. Each record carries the message's
position in the walk, so a record file that does not match its bag is an error, never a
silent shift. The format is plain (a JSON head and the CDR bytes, length-prefixed), so a
record file holds no code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
import json
from pathlib import Path
import struct
from typing import BinaryIO

_LENGTH = struct.Struct('<I')
MAGIC = b'hand_pose_ros stream records 1\n'


@dataclass
class Record:
    """What one message of a camera did: counts and output messages (topic, type, CDR)."""

    position: int  # the message's 1-based position in the bag's walk
    frames: int = 0
    processed: int = 0
    hands: int = 0
    bad: Counter = field(default_factory=Counter)
    outputs: list[tuple[str, str, bytes]] = field(default_factory=list)


class RecordWriter:
    """Appends records to a file (created with its folder, replaced if it exists)."""

    def __init__(self, path: Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(path, 'wb')
        self._file.write(MAGIC)

    def write(self, record: Record) -> None:
        head = json.dumps({
            'position': record.position, 'frames': record.frames,
            'processed': record.processed, 'hands': record.hands, 'bad': dict(record.bad),
            'outputs': [[t, m, len(b)] for t, m, b in record.outputs]}).encode()
        self._file.write(_LENGTH.pack(len(head)))
        self._file.write(head)
        for _, _, data in record.outputs:
            self._file.write(data)

    def close(self) -> None:
        self._file.close()


def read_records(path: Path) -> Iterator[Record]:
    """Yield the records of a file in order, one at a time (memory stays bounded)."""
    with open(path, 'rb') as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError(f'{path}: not a stream record file')
        while size := f.read(_LENGTH.size):
            head = json.loads(f.read(_LENGTH.unpack(size)[0]))
            yield Record(head['position'], head['frames'], head['processed'], head['hands'],
                         Counter(head['bad']),
                         [(t, m, f.read(n)) for t, m, n in head['outputs']])
