"""Widgets without a front end, with their comm messages counted (ipywidgets' DummyComm
pattern): what a test asserts about traffic is what a kernel would send on IOPub."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import comm
from comm.base_comm import BaseComm


class CountingComm(BaseComm):
    """Records every message instead of publishing it."""

    sent: list[tuple[str, dict[str, Any]]] = []

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                    buffers: Any = None, **keys: Any) -> None:
        CountingComm.sent.append((msg_type, data or {}))


@contextmanager
def counted_comms() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Widgets created inside get counting comms; yields the shared message list."""
    sent: list[tuple[str, dict[str, Any]]] = []
    CountingComm.sent = sent
    saved = comm.create_comm
    comm.create_comm = lambda *a, **k: CountingComm(*a, **k)
    try:
        yield sent
    finally:
        comm.create_comm = saved


def updates(sent: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The state updates among ``sent`` (not the comm opens)."""
    return [d for kind, d in sent if kind == "comm_msg" and d.get("method") == "update"]
