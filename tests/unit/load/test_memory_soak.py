"""The memory soak's arithmetic: resident size around a point, and growth between points."""

from __future__ import annotations

import pytest

from load import memory_soak as soak


def curve(points: list[tuple[float, int]]) -> object:
    result = soak.Soak(cdrs=1_000_000)
    result.samples = [(share, kib, kib - 1000, 1000) for share, kib in points]
    return result


def test_the_size_at_a_point_is_the_median_of_the_samples_around_it() -> None:
    # one batch spike at 50 % must not decide the level there
    result = curve([(0.46, 200_000), (0.49, 200_100), (0.5, 260_000), (0.52, 200_200)])
    assert result.at(0.5) == 200_150  # the median of 200,000 200,100 200,200 260,000
    assert result.at(0.5, column=3) == 1000


def test_a_point_without_samples_nearby_takes_the_first_one_past_it() -> None:
    result = curve([(0.1, 100_000), (0.9, 150_000)])
    assert result.at(0.5) == 150_000


def test_growth_compares_a_point_with_the_end() -> None:
    # warm-up to a plateau: growth over the whole drain, none over its last half
    points = [(s / 100, min(100_000 + 1_250 * s, 150_000)) for s in range(0, 101)]
    result = curve(points)
    assert result.growth(0.25) == pytest.approx(150_000 / 131_250 - 1)  # 131,250 at 25 %
    assert result.growth(0.5) == 0.0  # flat from 40 %


def test_the_report_names_every_tenth_and_the_three_growths() -> None:
    points = [(s / 100, 100_000 + 500 * s) for s in range(0, 101)]
    text = soak.report(curve(points), "cmd", "broker")
    assert all(f"| {tenth}% |" in text for tenth in range(10, 101, 10))
    assert "from 25 % to 100 %" in text and "from 50 % to 100 %" in text
    assert "from 70 % to 100 %" in text
