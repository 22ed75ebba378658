"""The test that marks a benchmark row worse in ``benchmarks/compare_trees.py``."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
from compare_trees import ALPHA, p_behind  # noqa: E402


def test_a_second_tree_behind_in_every_sample_is_worse() -> None:
    # lower is better (a lateness): every sample of the second is later
    assert p_behind([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], higher_is_better=False) == 1 / 252
    # higher is better (a throughput): every sample of the second is lower
    assert p_behind([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], higher_is_better=True) == 1 / 252


def test_a_second_tree_ahead_or_interleaved_is_not() -> None:
    assert p_behind([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], higher_is_better=True) == 1.0
    assert p_behind([1, 3, 5, 7, 9], [2, 4, 6, 8, 10], higher_is_better=False) > ALPHA


def test_equal_samples_say_nothing_and_a_steady_shift_says_worse() -> None:
    assert p_behind([532.0] * 5, [532.0] * 5, higher_is_better=False) == 1.0
    assert p_behind([532.0] * 5, [549.0] * 5, higher_is_better=False) < ALPHA


def test_three_samples_a_side_can_never_be_marked_worse() -> None:
    assert p_behind([1, 2, 3], [4, 5, 6], higher_is_better=False) == 1 / 20  # not < 0.05
