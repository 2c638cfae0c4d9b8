"""The capacity search's logic (search/bisection.py, statistics.py) against the model network of
``search_support`` (a real ``TrialRunner``; its clock advances one step per trial, so budgets
are exact)."""

from __future__ import annotations

import math

import pytest
from search_support import ModelNetwork, search, settings

from orchestrator.search.bisection import (
    GeneratorLimits,
    judge_point,
    next_rate,
    scale_generator,
)
from orchestrator.search.model import (
    GeneratorSetting,
    Limit,
    Phase,
    Trial,
    Verdict,
)
from orchestrator.search.statistics import estimate, slope, t_quantile


def test_ramp_then_bisection_finds_the_knee_within_the_resolution() -> None:
    # p99 = 500 / (1 - r/1000) <= 2000 ms while r <= 750 tx/s: the SLO is the knee.
    network = ModelNetwork(capacity=1000.0)
    result = search(network).run()
    rates = [point.rate for point in result.points]
    assert rates[:5] == [100, 200, 400, 800, 600]  # doubling, then halfway
    assert [p.phase for p in result.points[:5]] == [Phase.RAMP] * 4 + [Phase.BISECT]
    assert result.limited_by is Limit.NETWORK
    assert result.knee_tps is not None and 700 <= result.knee_tps <= 750
    failing = min(p.rate for p in result.points if p.verdict is Verdict.FAIL)
    assert failing - result.knee_tps <= 0.05 * result.knee_tps
    knee = result.knee
    assert knee is not None and len(knee.trials) == 3
    assert knee.p99_ms is not None and knee.p99_ms.n == 3
    assert knee.p99_ms.low is not None and knee.p99_ms.low < knee.p99_ms.mean < knee.p99_ms.high
    assert "knee at" in result.conclusion and "SLO 2000 ms" in result.conclusion


def test_throughput_and_a_growing_mempool_fail_a_point_too() -> None:
    # A loose SLO: now the capacity itself (achieved < 95 % of offered) is the knee.
    result = search(ModelNetwork(capacity=500.0), slo_p99_ms=1e9).run()
    assert result.knee_tps is not None and 476 <= result.knee_tps <= 526
    (over,) = [p for p in result.points if p.rate == 800]
    assert any("achieved/offered" in reason for reason in over.reasons)
    assert any("mempools grew" in reason for reason in over.reasons)


def test_a_saturated_generator_gets_more_users_and_its_trials_do_not_count() -> None:
    network = ModelNetwork(capacity=1000.0, per_user_tps=60.0, users=4)  # 240 tx/s at first
    result = search(network).run()
    assert result.limited_by is Limit.NETWORK
    assert result.knee_tps is not None and 700 <= result.knee_tps <= 750  # the network's knee
    (at_400,) = [p for p in result.points if p.rate == 400]
    saturated = [t for t in at_400.trials if t.generator_saturated]
    assert saturated and len(at_400.counted) == 3  # repeated with 8 users
    assert {t.generator.users for t in at_400.counted} == {8}
    assert max(g.users for _, g in network.runs) == 16  # 800 tx/s needed 16 users


def test_a_generator_at_its_limits_is_never_reported_as_the_network() -> None:
    network = ModelNetwork(
        capacity=5000.0, per_user_tps=60.0, limits=GeneratorLimits(max_users=8, max_workers=1)
    )
    result = search(network).run()
    assert result.limited_by is Limit.LOAD_GENERATOR
    assert result.knee_tps is not None and result.knee_tps <= 480  # 8 users x 60 tx/s
    limited = [p for p in result.points if p.verdict is Verdict.GENERATOR_LIMITED]
    assert limited and all("network was not measured" in p.reasons[0] for p in limited)
    assert "its limit, not the network's" in result.conclusion


def test_a_cpu_bound_generator_gets_another_worker() -> None:
    network = ModelNetwork(
        capacity=1000.0, per_worker_tps=300.0, limits=GeneratorLimits(max_users=64, max_workers=4)
    )
    result = search(network).run()
    assert result.limited_by is Limit.NETWORK
    assert max(g.workers for _, g in network.runs) == 3  # 800 tx/s over 300 per worker
    grown = GeneratorSetting(users=4, workers=1)
    cpu = Trial(rate=1, index=0, generator=grown, generator_saturated=True,
                generator_cpu_saturated=True)  # fmt: skip
    assert scale_generator(grown, cpu, GeneratorLimits(64, 2)) == GeneratorSetting(
        users=8, workers=2
    )
    assert scale_generator(grown, cpu, GeneratorLimits(64, 1)) is None
    behind = cpu.model_copy(update={"generator_cpu_saturated": False})
    assert scale_generator(grown, behind, GeneratorLimits(6, 1)) == GeneratorSetting(users=6)
    full = GeneratorSetting(users=6)
    assert scale_generator(full, behind, GeneratorLimits(6, 1)) is None


def test_a_failing_start_goes_down() -> None:
    result = search(ModelNetwork(capacity=100.0), start_tps=400.0).run()
    phases = [(p.rate, p.phase) for p in result.points[:3]]
    assert phases == [(400, Phase.RAMP), (200, Phase.DOWN), (100, Phase.DOWN)]
    assert result.knee_tps is not None and result.knee_tps < 100
    nothing = search(ModelNetwork(capacity=1.0), start_tps=8.0, min_tps=2.0).run()
    assert nothing.knee_tps is None and "no rate passed down to 2 tx/s" in nothing.conclusion


def test_max_rate_and_budgets_bound_the_search() -> None:
    result = search(ModelNetwork(capacity=1e6), max_tps=1000.0).run()
    assert [p.rate for p in result.points] == [100, 200, 400, 800, 1000]
    assert result.limited_by is Limit.MAX_RATE and result.knee_tps == 1000
    assert "the knee is above it" in result.conclusion
    few = search(ModelNetwork(capacity=1000.0), max_points=3).run()
    assert len(few.points) == 3 and few.limited_by is Limit.BUDGET
    assert "budget ran out" in few.conclusion and few.knee_tps == 400
    # 3 trials of 20 s per point: with 150 s, the second point would end past the budget.
    short = search(ModelNetwork(capacity=1000.0), max_duration_s=150.0).run()
    assert len(short.points) == 2 and short.limited_by is Limit.BUDGET


def test_judge_point_needs_every_figure() -> None:
    plain = Trial(rate=100, index=0, generator=GeneratorSetting(users=1), achieved_tps=99.0)
    point = judge_point(100, Phase.RAMP, [plain], settings(trials=1))
    assert point.verdict is Verdict.FAIL
    assert "end-to-end p99 not measured" in point.reasons
    assert "mempool growth not measured: not judged" in point.reasons
    good = plain.model_copy(update={"p99_ms": 100.0})
    point = judge_point(100, Phase.RAMP, [good], settings(trials=1))
    assert point.verdict is Verdict.PASS
    assert point.p99_ms is not None and point.p99_ms.describe() == "100 (1 trial)"


def test_statistics() -> None:
    assert t_quantile(1) == 12.706 and t_quantile(2) == 4.303 and t_quantile(100) == 1.96
    with pytest.raises(ValueError, match="degrees of freedom 0"):
        t_quantile(0)
    found = estimate([1.0, 2.0, 3.0, None])
    assert found is not None and (found.mean, found.n) == (2.0, 3)
    assert found.high == pytest.approx(2.0 + 4.303 / math.sqrt(3))
    assert estimate([None]) is None
    assert slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == pytest.approx(2.0)
    assert slope([(1.0, 1.0)]) is None and slope([(1.0, 1.0), (1.0, 2.0)]) is None
    assert next_rate(400, 800) == 600 and next_rate(2, 3) == 2.5
