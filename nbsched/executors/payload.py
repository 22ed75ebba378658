"""A run as bytes for another process: what the process executor sends its workers and the
Dask executor sends the process that runs it on a worker.

The job's callable travels by value with cloudpickle (functions, lambdas and classes defined
in a notebook cell work), or by reference (``"module:function"``) when the scheduler did not
resolve it; the arguments always by value. Unpacking resolves the reference in the process
that runs the job.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cloudpickle

if TYPE_CHECKING:
    from ..abc import RunRequest

__all__ = ["pack", "unpack"]


def pack(request: RunRequest) -> bytes:
    """``request``'s job and arguments.

    :raises Exception: whatever cloudpickle raises for an object it cannot pickle
    """
    target = request.target if request.func is None else None
    data: bytes = cloudpickle.dumps(
        (request.func, target, request.args, dict(request.kwargs)),
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    return data


def unpack(data: bytes) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """The callable, positional and keyword arguments :func:`pack` sent.

    :raises TargetLookupError: a reference that does not resolve here
    """
    func, target, args, kwargs = pickle.loads(data)
    if func is None:
        # (imported here: a worker process that only ever gets functions by value never
        # needs the import machinery of references)
        from ..targets import ref_to_callable

        func = ref_to_callable(target)
    return func, args, kwargs
