"""The parts of ``nbsched`` on the command line that ``nbsched/cli.py`` (the argument parser
and the small subcommands) hands off: the store and JSON forms shared by the subcommands
(:mod:`.common`), running a notebook once (:mod:`.run`) and serving a store (:mod:`.serve`).
"""

from __future__ import annotations
