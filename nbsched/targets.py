"""A job's target as text: ``"module:qualname"`` references to callables, and back.

Jobs are stored by reference, never by value (process jobs travel pickled, but the stored job
names its function), so a restarted kernel can find the function again by name.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

from .errors import TargetLookupError

__all__ = ["callable_to_ref", "ref_to_callable", "is_importable_ref"]


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
