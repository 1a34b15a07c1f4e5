"""The input connections process-bag copies into its output bag, and their output connections."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import logging
from typing import Any

_LOG = logging.getLogger(__name__)
TF_TOPIC = '/tf'


def copied_connections(store: Any, inputs: Iterable[Any],
                       outputs: Sequence[tuple[str, str]]) -> dict[int, tuple[Any, str, str]]:
    """
    Input connection id -> (connection, definition, hash) of the copied topics.

    An input topic that is also an output of this run (a bag processed before) is
    replaced, not mixed, except /tf, whose other transforms are kept. This depends on
    the inputs only, so every walk of a bag (run, record) reads the same messages.
    """
    replaced = set(outputs)
    copied: dict[int, tuple[Any, str, str]] = {}
    for conn in inputs:
        if (conn.topic, conn.msgtype) in replaced and conn.topic != TF_TOPIC:
            continue
        msgdef, digest = conn.msgdef.data, conn.digest
        if not msgdef or not digest:  # old sqlite3 bags carry no definitions
            try:
                msgdef = store.generate_msgdef(conn.msgtype, ros_version=2)[0]
                digest = store.hash_rihs01(conn.msgtype)
            except Exception:  # noqa: BLE001 - a type the typestore does not know
                _LOG.warning('%s (%s): no message definition, not copied', conn.topic,
                             conn.msgtype)
                continue
        copied[conn.id] = (conn, msgdef, digest)
    return copied


def add_copies(writer: Any, copied: dict[int, tuple[Any, str, str]],
               outputs: dict[tuple[str, str], Any]) -> dict[int, Any]:
    """Input connection id -> output connection for the copied topics."""
    copies: dict[int, Any] = {}
    for conn_id, (conn, msgdef, digest) in copied.items():
        key = (conn.topic, conn.msgtype)
        if key in outputs:  # /tf: into the output's connection
            copies[conn_id] = outputs[key]
            continue
        try:
            copies[conn_id] = writer.add_connection(
                conn.topic, conn.msgtype, msgdef=msgdef, rihs01=digest,
                serialization_format=conn.ext.serialization_format,
                offered_qos_profiles=conn.ext.offered_qos_profiles)
        except Exception:  # noqa: BLE001 - the same connection twice (several writers)
            same = [c for c in writer.connections
                    if c.topic == conn.topic and c.msgtype == conn.msgtype]
            if same:
                copies[conn_id] = same[0]
    return copies
