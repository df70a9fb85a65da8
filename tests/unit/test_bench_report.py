"""The benchmark reads the worker's resident size as a level, not one sample (rater.ops.bench)."""

from __future__ import annotations

from rater.ops.bench import RunResult, rss_growth


def test_the_level_around_a_share_is_the_median_of_the_samples_near_it() -> None:
    samples = [(0.10, 900), (0.21, 100), (0.24, 400), (0.27, 110), (0.31, 900)]
    samples += [(0.94, 900), (0.96, 120), (0.99, 500), (1.0, 121)]
    result = RunResult(rss_samples=samples)
    assert result.rss_at(0.25) == 110  # 100, 400, 110: the batch peak of 400 is left out
    assert result.rss_at(1.0) == 121  # 120, 500, 121
    assert round(rss_growth(result), 3) == 0.1  # (121 - 110) / 110


def test_without_samples_near_a_share_the_first_one_past_it_counts() -> None:
    result = RunResult(rss_samples=[(0.1, 100), (0.5, 200), (0.8, 300)])
    assert result.rss_at(0.25) == 200
    assert result.rss_at(1.0) == 300  # the drain's last sample
