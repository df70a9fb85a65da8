"""The benchmark's report (load.bench.run): resident size as a level; the latency row; sections."""

from __future__ import annotations

from pathlib import Path

from load.bench.run import Latency, RunResult, measures, rss_growth, write_marked


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


def _p99_row(latency_rate: float | None) -> tuple[str, list[float], str, str, bool | None]:
    ms = [float(ms) for ms in range(1, 101)]
    run = RunResult(latency=Latency(sent=100, indexes=list(range(100)), consumed_ms=ms))
    return next(row for row in measures([run], latency_rate) if "p99" in row[0] and "ms" in row[0])


def test_p99_is_judged_against_the_target_only_at_half_the_peak() -> None:
    label, values, _, target, met = _p99_row(None)
    assert (label, target, met) == ("**latency p99 ms** at half peak", "≤ 250", True)
    assert values == [100.0]


def test_p99_at_a_given_rate_is_reported_without_a_verdict() -> None:
    label, values, _, target, met = _p99_row(15_000)
    assert (label, values, target, met) == ("latency p99 ms at 15,000 CDR/s", [100.0], "", None)


def test_a_marked_section_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Intro\n\nkept\n", encoding="utf-8")
    write_marked(doc, "first\n", "<!-- a -->", "<!-- /a -->")
    write_marked(doc, "second", "<!-- a -->", "<!-- /a -->")
    assert doc.read_text(encoding="utf-8") == "# Intro\n\nkept\n\n<!-- a -->\nsecond\n<!-- /a -->\n"
