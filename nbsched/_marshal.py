"""Turning live objects into persistent references and back.

* callables <-> ``"module:qualname"`` references;
* triggers <-> versioned JSON state, through a registry the trigger classes join with
  :func:`register_trigger`.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from .abc import Trigger
from .errors import StateVersionError, TargetLookupError

__all__ = [
    "register_trigger",
    "trigger_from_state",
    "BrokenTrigger",
    "callable_to_ref",
    "ref_to_callable",
    "is_importable_ref",
]

_TRIGGERS: dict[str, type[Trigger]] = {}
T = TypeVar("T", bound=type[Trigger])


def register_trigger(cls: T) -> T:
    """Class decorator: make ``cls`` restorable from its ``to_state()``."""
    _TRIGGERS[cls.type_name] = cls
    return cls


def trigger_from_state(state: Mapping[str, Any]) -> Trigger:
    """Rebuild a trigger from ``Trigger.to_state()`` output.

    :raises StateVersionError: unknown trigger type or state version
    """
    import nbsched.triggers  # noqa: F401  (registers the built-in triggers)

    kind = state.get("type")
    cls = _TRIGGERS.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise StateVersionError(
            f"Unknown trigger type {kind!r} in stored state (known: {sorted(_TRIGGERS)}); "
            "was the store written by a newer nbsched?"
        )
    return cls.from_state(state)


@register_trigger
class BrokenTrigger(Trigger):
    """Stands in for a stored trigger that cannot be restored, so that the job is still
    listed (and can be removed or replaced) instead of disappearing. It never fires."""

    type_name = "broken"

    def __init__(self, state: Mapping[str, Any], reason: str) -> None:
        self.state = dict(state)
        self.reason = reason

    def next_fire_time(self, after: datetime) -> datetime | None:
        return None

    def describe(self) -> str:
        return f"unreadable schedule ({self.reason})"

    def to_state(self) -> dict[str, Any]:
        return self.state  # written back unchanged

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Trigger:
        return cls(state, "unreadable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BrokenTrigger) and other.state == self.state

    def __hash__(self) -> int:
        return hash(repr(sorted(self.state.items())))

    def __repr__(self) -> str:
        return f"BrokenTrigger({self.state!r}, reason={self.reason!r})"


def callable_to_ref(func: Callable[..., Any]) -> str:
    """``"module:qualname"`` for ``func``. Functions defined in a notebook (``__main__``)
    give ``"__main__:name"``; they are bound again by name after a restart.

    :raises TargetLookupError: for lambdas, nested functions and other objects that have no
        stable name
    """
    if inspect.ismethod(func):
        owner = func.__self__
        if not inspect.isclass(owner):
            raise TargetLookupError(
                f"{func!r} is a method bound to an instance, which cannot be stored by "
                "reference; schedule a module-level function, or a classmethod/staticmethod"
            )
        func_name = f"{owner.__qualname__}.{func.__name__}"
        module = owner.__module__
    else:
        func_name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or ""
        module = getattr(func, "__module__", None) or ""
    if not func_name or not module:
        raise TargetLookupError(f"{func!r} has no module and name to store a reference to")
    if "<lambda>" in func_name or "<locals>" in func_name:
        raise TargetLookupError(
            f"{func_name} is a lambda or nested function, which has no name to store; "
            "define it at the top level of a module or notebook cell"
        )
    # interned: thousands of jobs of one function share a single string
    return sys.intern(f"{module}:{func_name}")


def is_importable_ref(ref: str) -> bool:
    """True for ``"module:qualname"`` references outside ``__main__``."""
    module, _, name = ref.partition(":")
    return bool(module and name) and module != "__main__"


def ref_to_callable(ref: str) -> Callable[..., Any]:
    """Import the callable named by ``"module:qualname"``.

    :raises TargetLookupError: the reference is malformed or does not resolve
    """
    module_name, sep, qualname = ref.partition(":")
    if not sep or not module_name or not qualname:
        raise TargetLookupError(
            f"Invalid target reference {ref!r}: expected 'package.module:function'"
        )
    # sys.modules first, as the import system's own fast path does (a module still being
    # imported by another thread goes through the import, which waits for it): a restart
    # resolves the same module for thousands of jobs.
    obj: Any = sys.modules.get(module_name)
    try:
        if obj is None or getattr(getattr(obj, "__spec__", None), "_initializing", False):
            obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise TargetLookupError(f"Cannot import module {module_name!r} of {ref!r}: {exc}") from exc
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetLookupError(
                f"Module {module_name!r} has no attribute {qualname!r} (target {ref!r})"
            ) from None
    if not callable(obj):
        raise TargetLookupError(f"{ref!r} is not callable")
    return obj  # type: ignore[no-any-return]
