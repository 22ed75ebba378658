"""A run's files go with its record: when retention prunes a run, its executed notebook
(``Run.output_path``) is deleted too, so run history bounds the disk as well as the store."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

__all__ = ["discard_outputs"]

log = logging.getLogger("nbsched")


def discard_outputs(paths: Iterable[str | None]) -> None:
    """Delete the files of pruned runs. Only executed notebooks (``.ipynb``) are touched,
    whatever a store row says; a file already gone is fine."""
    for path in paths:
        if not path or not path.endswith(".ipynb"):
            continue
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("nbsched: could not delete the output of a pruned run: %s", exc)
