"""Keep job output out of notebook cells: the kernel-specific half.

The scheduler puts a thread-routing proxy on ``sys.stdout``/``sys.stderr``
(``nbsched.executors.capture``): a print in a job thread lands in that run's buffer. Two paths
go around that proxy inside a kernel, and both end in whatever cell happens to be running --
ipykernel sends a background thread's output with the *most recent* parent header (ipykernel
6 always; ipykernel 7 too, unless the thread called ``set_thread_parent``):

1. writes to the kernel's stream objects held from *before* the proxy was installed --
   typically a ``logging.StreamHandler`` made by ``logging.basicConfig()`` in an earlier
   cell, or any ``file=sys.stderr`` default bound early;
2. rich output: ``display(...)`` from a job goes through ``shell.display_pub``.

So, in a kernel, this module also routes the ``write`` of ipykernel's two ``OutStream``
objects and the display publisher's ``publish``/``clear_output``: from a thread that is
capturing (a job run) the text goes to the run's buffer (for a display, its ``text/plain``
form); from any other thread nothing changes. This works the same on ipykernel 6 and 7,
because it never depends on parent headers.

The streams get a subclass whose ``write`` is a data descriptor (the instance's class is
swapped, and swapped back on unload). A plain instance attribute would not survive: IPython
9 saves ``sys.stdout.write`` at the start of every cell, patches it for the cell, and assigns
the saved value back at the end (``InteractiveShell._tee``), which silently dropped a hook
installed during the cell that ran ``%load_ext``.

What still cannot be told apart per thread: writes to file descriptors 1/2 (``os.system``,
C extensions, subprocesses inheriting the kernel's stdout). ipykernel forwards those from its
fd-watcher thread to the most recent cell. Use ``--executor process`` for such jobs.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..executors import capture as _capture

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["install", "uninstall", "capturing", "mode"]

_MARK = "_nbsched_routed"


_buffer = _capture.buffer  # the calling thread's run buffer; None outside job runs


def capturing() -> bool:
    """True in a thread whose output is being captured into a run."""
    return _buffer() is not None


def _real_stream(stream: Any) -> Any:
    """The object under ``_capture``'s proxy, if there is one."""
    return getattr(stream, "_wrapped", stream) if stream is not None else None


def _is_kernel_stream(stream: Any) -> bool:
    try:
        from ipykernel.iostream import OutStream
    except ImportError:  # pragma: no cover - ipykernel is a dependency
        return False
    return isinstance(stream, OutStream)


class _RoutedWrite:
    """What ``stream.write`` returns on a routed stream: captures in job threads, else calls
    the write that would otherwise be there (``inner``)."""

    __slots__ = ("stream", "inner")

    def __init__(self, stream: Any, inner: Callable[..., Any]) -> None:
        self.stream = stream
        self.inner = inner

    def __call__(self, text: Any, *args: Any, **kwargs: Any) -> Any:
        buf = _buffer()
        if buf is not None and isinstance(text, str):
            buf.append(text)
            return len(text)
        return self.inner(text, *args, **kwargs)


def _get_write(stream: Any) -> _RoutedWrite:
    inner = stream.__dict__.get(_INNER)
    if inner is None:
        inner = types.MethodType(type(stream)._nbsched_base.write, stream)
    return _RoutedWrite(stream, inner)


def _set_write(stream: Any, value: Any) -> None:
    # IPython 9 saves ``stream.write``, sets its own recording wrapper for the duration of
    # every cell and then puts the saved one back (InteractiveShell._tee). Taking the
    # assignment here keeps routing in front of whatever is assigned, without nesting.
    if isinstance(value, _RoutedWrite) and value.stream is stream:
        value = value.inner
    stream.__dict__[_INNER] = value


def _del_write(stream: Any) -> None:
    stream.__dict__.pop(_INNER, None)


_INNER = "_nbsched_inner_write"
_routed_classes: dict[type, type] = {}


def _routed_class(base: type) -> type:
    """A subclass of ``base`` whose ``write`` is a data descriptor: it wins over instance
    attributes, so per-instance patching by others (IPython's ``_tee``) cannot remove it."""
    cls = _routed_classes.get(base)
    if cls is None:
        cls = type(
            f"Routed{base.__name__}",
            (base,),
            {
                "write": property(_get_write, _set_write, _del_write),
                "_nbsched_base": base,
                "__module__": __name__,
            },
        )
        _routed_classes[base] = cls
    return cls


def _hook_stream(stream: Any) -> bool:
    if getattr(type(stream), "_nbsched_base", None) is not None:
        return False
    pending = stream.__dict__.pop("write", None)  # e.g. IPython's _tee, mid-cell
    stream.__class__ = _routed_class(type(stream))
    if pending is not None:
        stream.__dict__[_INNER] = pending
    return True


def _unhook_stream(stream: Any) -> None:
    base = getattr(type(stream), "_nbsched_base", None)
    if base is None:
        return
    inner = stream.__dict__.pop(_INNER, None)
    stream.__class__ = base
    default = isinstance(inner, types.MethodType) and inner.__func__ is base.write
    if inner is not None and not default:
        stream.__dict__["write"] = inner


def _hook_display(pub: Any) -> None:
    if _MARK in vars(pub):
        return
    publish = pub.publish
    clear_output = pub.clear_output

    def routed_publish(data: Any, *args: Any, **kwargs: Any) -> Any:
        buf = _buffer()
        if buf is None:
            return publish(data, *args, **kwargs)
        text = data.get("text/plain") if isinstance(data, dict) else None
        if text is None:
            kinds = ", ".join(map(str, data)) if isinstance(data, dict) else type(data).__name__
            text = f"<display: {kinds}>"
        buf.append(str(text) + "\n")
        return None

    def routed_clear_output(*args: Any, **kwargs: Any) -> Any:
        if _buffer() is None:
            return clear_output(*args, **kwargs)
        return None

    pub.publish = routed_publish
    pub.clear_output = routed_clear_output
    setattr(pub, _MARK, True)


def _unhook_display(pub: Any) -> None:
    if vars(pub).pop(_MARK, None):
        vars(pub).pop("publish", None)
        vars(pub).pop("clear_output", None)


def _routable(obj: Any) -> bool:
    return _is_kernel_stream(obj) or _capture.is_proxy(obj)


#: the stream objects whose class :func:`install` swapped, to swap back in :func:`uninstall`
_hooked: list[Any] = []


def install(shell: InteractiveShell) -> None:
    """Route the kernel's streams (and ``_capture``'s proxies in front of them) and the
    display publisher. Idempotent; call again after the streams change (scheduler start)."""
    for stream in (sys.stdout, sys.stderr):
        for obj in (stream, _real_stream(stream)):
            if obj is not None and _routable(obj) and _hook_stream(obj):
                _hooked.append(obj)
    pub = getattr(shell, "display_pub", None)
    if pub is not None:
        _hook_display(pub)


def uninstall(shell: InteractiveShell) -> None:
    """Undo :func:`install`."""
    while _hooked:
        _unhook_stream(_hooked.pop())
    pub = getattr(shell, "display_pub", None)
    if pub is not None:
        _unhook_display(pub)


def mode() -> str:
    """How job output is routed here, in words (shown by ``%schedule status``)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        version = dist_version("ipykernel")
    except PackageNotFoundError:  # pragma: no cover - ipykernel is a dependency
        version = "?"
    hooked = [s for s in _hooked if _is_kernel_stream(s)]
    where = f"ipykernel {version}, kernel streams hooked" if hooked else "no kernel streams"
    return f"per-thread capture into Run.output ({where})"
