"""
Output messages as the bag stores them: rclpy messages copied into rosbags' classes, as CDR.

The node's converters (ros/msg_out, tf, markers) build rclpy messages; these are copied
field by field into rosbags' classes and serialized by rosbags, whose CDR has zero padding.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from hand_pose_ros.bags.typestore import typestore
import numpy as np

# rosbags' numpy dtypes of the primitive types (fixed arrays and sequences of them).
_DTYPES = {'bool': np.bool_, 'byte': np.uint8, 'char': np.uint8, 'int8': np.int8,
           'uint8': np.uint8, 'int16': np.int16, 'uint16': np.uint16, 'int32': np.int32,
           'uint32': np.uint32, 'int64': np.int64, 'uint64': np.uint64,
           'float32': np.float32, 'float64': np.float64}


@cache
def _plan(msgtype: str) -> tuple[Any, tuple[tuple[str, int, Any], ...]]:
    """(rosbags class, ((field, how to copy it, detail), ...)) of a type, built once."""
    from rosbags.interfaces import Nodetype
    store = typestore()
    plan = []
    for name, (kind, detail) in store.fielddefs[msgtype][1]:
        if kind == Nodetype.BASE:
            plan.append((name, _VALUE, None))
        elif kind == Nodetype.NAME:
            plan.append((name, _MESSAGE, detail))
        else:
            (inner, inner_detail), _ = detail
            if inner == Nodetype.NAME:
                plan.append((name, _MESSAGES, inner_detail))
            elif inner_detail[0] == 'string':
                plan.append((name, _STRINGS, None))
            else:
                plan.append((name, _NUMBERS, _DTYPES[inner_detail[0]]))
    return store.types[msgtype], tuple(plan)


_VALUE, _MESSAGE, _MESSAGES, _STRINGS, _NUMBERS = range(5)


@cache
def _readable(msgtype: str) -> bool:
    """
    Whether rosbags' serializer can read an rclpy message of this type as it is.

    Its generated code only reads attributes: plain values, strings and lists of strings,
    and messages made of those, read the same from an rclpy object. Numeric arrays are not
    (rclpy gives array.array, rosbags needs numpy), nor byte and char (rclpy: bytes, str).
    """
    from rosbags.interfaces import Nodetype
    for _, (kind, detail) in typestore().fielddefs[msgtype][1]:
        if kind == Nodetype.BASE:
            if detail[0] in ('byte', 'char'):
                return False
        elif kind == Nodetype.NAME:
            if not _readable(detail):
                return False
        else:
            (inner, inner_detail), _ = detail
            if inner == Nodetype.NAME:
                if not _readable(inner_detail):
                    return False
            elif inner_detail[0] != 'string':
                return False
    return True


def _serializable(message: Any, msgtype: str) -> Any:
    """
    Return what rosbags' serializer reads for an rclpy message: the message where it can.

    Otherwise a rosbags object holding the message's readable parts as they are (the Points
    of a HandArray, ...) and copies of the others (numeric arrays as numpy), without building
    a rosbags object per Point.
    """
    if _readable(msgtype):
        return message
    cls, plan = _plan(msgtype)
    kwargs = {}
    for name, how, detail in plan:
        value = getattr(message, name)
        if how == _VALUE:
            kwargs[name] = value
        elif how == _MESSAGE:
            kwargs[name] = _serializable(value, detail)
        elif how == _MESSAGES:
            kwargs[name] = value if _readable(detail) else [
                _serializable(v, detail) for v in value]
        elif how == _STRINGS:
            kwargs[name] = value
        else:
            kwargs[name] = np.asarray(value, dtype=detail)
    return cls(**kwargs)


def to_cdr(message: Any, msgtype: str) -> bytes:
    """
    Serialize an rclpy message as the bag stores it (CDR, little endian, zero padding).

    rclpy's own serializer leaves the CDR alignment padding uninitialised (whatever was in
    memory), so its bytes differ from run to run; rosbags' writes zeros, which makes the
    output deterministic. rosbags serializes the rclpy objects themselves where it can read
    them (_serializable): profiling the runner found the copy into rosbags' classes, one
    object per Point, the larger part of writing a frame's messages.
    """
    return bytes(typestore().serialize_cdr(_serializable(message, msgtype), msgtype))
