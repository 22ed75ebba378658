"""The IPython layer: ``%load_ext nbsched``, the ``%schedule`` magics, configuration and
routing of job output away from cells.

``extension`` loads and unloads; ``state`` holds what is loaded (:func:`current`);
``magics`` is ``%schedule`` over ``parsing`` (its command line) and ``cells`` (jobs made of
this kernel's code); ``hooks`` ties into IPython's cell events and the kernel's shutdown;
``output`` keeps job output out of cells; ``config`` is the traitlets settings class.
Nothing below this package imports IPython, traitlets or ipywidgets.
"""

from __future__ import annotations

from .extension import load as load
from .extension import unload as unload
from .state import current as current
from .state import loaded as loaded

__all__ = ["current", "loaded", "load", "unload"]
