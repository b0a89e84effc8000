"""The speed benchmark's marginal figures: (median large run - median small run) / the tests
between, the tool's ratio to the conftest, and the bootstrap interval that says how far the
rounds' noise moves that ratio."""

from __future__ import annotations

import pytest

from benchmarks.speed import MARGINAL, Marginal

CONFTEST, TOOL = MARGINAL


def rounds(conftest: list[tuple[float, float]], tool: list[tuple[float, float]]) -> Marginal:
    """Walls in seconds per round, (small run, large run) of each, for runs of 50 and 450."""
    walls = {
        (CONFTEST, 50): [small for small, _ in conftest],
        (CONFTEST, 450): [large for _, large in conftest],
        (TOOL, 50): [small for small, _ in tool],
        (TOOL, 450): [large for _, large in tool],
    }
    return Marginal(50, 450, walls, cpus={key: [0.0] * len(v) for key, v in walls.items()})


def test_the_marginal_cost_is_the_difference_of_the_medians_per_test() -> None:
    # conftest: 1.0 ms a test (0.4 s more over 400 tests); tool: 1.1 ms; the odd round out
    # (a slow start of the conftest's large run) is outvoted by the median
    measured = rounds(
        [(1.0, 1.4), (1.0, 1.4), (1.1, 2.9)],
        [(1.3, 1.74), (1.3, 1.74), (1.4, 1.84)],
    )
    figures = measured.ms_per_test()
    assert figures[CONFTEST] == pytest.approx(1.0)
    assert figures[TOOL] == pytest.approx(1.1)
    assert measured.ratio() == pytest.approx(1.1)
    assert measured.rounds == 3
    # the rounds picked, repeats allowed, as the bootstrap draws them
    assert measured.ms_per_test([2, 2, 2])[CONFTEST] == pytest.approx(4.5)


def test_the_interval_brackets_the_ratio_and_widens_with_noise() -> None:
    steady = rounds([(1.0, 1.4)] * 9, [(1.3, 1.78)] * 9)
    assert steady.interval() == pytest.approx((1.2, 1.2))
    noisy_conftest = [(1.0, 1.4), (1.2, 1.5), (0.9, 1.4), (1.1, 1.6), (1.0, 1.3)] * 2
    noisy = rounds(noisy_conftest, [(1.3, 1.78)] * 10)
    low, high = noisy.interval()
    assert low <= noisy.ratio() <= high
    assert high - low > 0.1
    assert noisy.interval() == (low, high)  # seeded: one run's measurements, one interval
