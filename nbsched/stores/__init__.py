"""Job stores: where jobs and their run history persist.

* :class:`MemoryJobStore` -- in this process only (``Scheduler(db_url=None)``, tests);
* :class:`SQLAlchemyJobStore` -- SQLite (the default, one file shared by every kernel of the
  user) or PostgreSQL.

Every store passes the same contract suite (``tests/stores/test_contract.py``). When a stored
job cannot be fully restored, the store still returns it, with a
:class:`~nbsched.triggers.registry.BrokenTrigger` that says why; its arguments are then
:class:`UnreadableArgs` / :class:`UnreadableKwargs` if *they* were the problem.

``SQLAlchemyJobStore`` is imported on first use, so that a process using only the memory store
does not import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._rows import UnreadableArgs as UnreadableArgs
from ._rows import UnreadableKwargs as UnreadableKwargs
from .memory import MemoryJobStore as MemoryJobStore

if TYPE_CHECKING:
    from .sqlalchemy import SQLAlchemyJobStore as SQLAlchemyJobStore

__all__ = ["MemoryJobStore", "SQLAlchemyJobStore", "UnreadableArgs", "UnreadableKwargs"]


def __getattr__(name: str) -> Any:
    if name == "SQLAlchemyJobStore":
        from .sqlalchemy import SQLAlchemyJobStore

        return SQLAlchemyJobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
