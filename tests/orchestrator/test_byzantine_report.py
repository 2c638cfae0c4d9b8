"""The byzantine section of a report: commits through a behaviour's window, slashings from the
committed evidence, the two criteria (commits resume within N s; equivocators slashed exactly
once per epoch, nobody else), the simulator's figures, and the section in report.md/html."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.external.simulator import SimRunResult
from orchestrator.measure.byzantine import (
    ByzantineWindow,
    commit_rises,
    honest_validators,
    longest_stall,
    simulated_byzantine,
    slashings_expected,
    slashings_in,
)
from orchestrator.measure.criteria import judge_commits_resume, judge_slashing
from orchestrator.report.model import (
    SCHEMA_MINOR,
    ByzantineFault,
    ByzantineReport,
    Report,
    SafetyReport,
    SlashingEvent,
    read_report,
)
from orchestrator.report.render import render_html, render_markdown
from orchestrator.scenario.loader import load_scenario
from orchestrator.scenario.plan import resolve_plan
from orchestrator.stages.simulate import simulated_report


@dataclass(frozen=True)
class Block:
    height: int
    evidence: tuple[tuple[int, int], ...] = ()


def window(index: int, attackers: tuple[int, ...], start: float, end: float | None,
           behaviour: str | None = "flood") -> ByzantineWindow:  # fmt: skip
    return ByzantineWindow(index, behaviour, attackers, start, end, None)


# ----------------------------------------------------------------------------- commits


def test_commit_rises_follow_the_highest_honest_validator() -> None:
    heights = {
        0: [(1.0, 5), (2.0, 5), (3.0, 6), (4.0, 8)],
        1: [(1.0, 5), (2.0, 6), (3.0, 6)],  # validator 1 stops reporting after 3 s
        2: [(1.0, 90), (2.0, 91)],  # the attacker: left out
    }
    assert commit_rises(heights, [0, 1]) == [2.0, 4.0]


def test_the_longest_stall_runs_from_the_start_to_the_first_commit_after_the_end() -> None:
    rises = [1.0, 2.0, 6.5, 7.0, 12.0]
    assert longest_stall(rises, 1.5, 8.0) == pytest.approx(5.0)  # 12.0 - 7.0
    assert longest_stall(rises, 2.5, 6.0) == pytest.approx(4.0)  # 6.5 - 2.5
    assert longest_stall(rises, 0.0, 13.0) is None  # nothing committed after the end
    assert longest_stall([], 0.0, 1.0) is None


def test_honest_validators_leave_out_every_attacker_meanwhile() -> None:
    faults = [window(0, (6,), 10, 15), window(1, (5,), 10, 15), window(2, (4,), 20, None)]
    assert honest_validators(faults[0], faults, 7) == [0, 1, 2, 3, 4]
    assert honest_validators(faults[2], faults, 7) == [0, 1, 2, 3, 5, 6]


# ----------------------------------------------------------------------------- slashings


def test_slashings_come_once_per_offender_and_epoch_from_the_committed_evidence() -> None:
    blocks = [Block(1), Block(2, ((5, 3),)), Block(3, ((5, 3), (6, 3))), Block(4, ((5, 4),))]
    events = slashings_in(blocks)
    assert [(e.validator, e.epoch, e.height, e.included) for e in events] == [
        (5, 3, 2, 2),  # included twice (a replay), applied once
        (5, 4, 4, 1),
        (6, 3, 3, 1),
    ]
    assert slashings_expected(events, {"0": 4, "1": 3, "2": 1}) == {"0": 3, "1": 2, "2": 0}


def fault(index: int, behaviour: str, slashing: str, attackers: list[int],
          slashed: list[SlashingEvent], stall: float | None = 1.0) -> ByzantineFault:  # fmt: skip
    return ByzantineFault(
        index=index, behaviour=behaviour, attackers=attackers, start=10.0 * index,
        end=10.0 * index + 5, actions=3, slashing=slashing, slashed=slashed,
        longest_stall_s=stall,
    )  # fmt: skip


FIVE = SlashingEvent(validator=5, epoch=2, height=40, included=1)
SIX = SlashingEvent(validator=6, epoch=3, height=70, included=2)


def report(*faults: ByzantineFault, counted: dict[str, int] | None = None) -> ByzantineReport:
    slashings = sorted({e.validator: e for f in faults for e in f.slashed}.values(),
                       key=lambda e: e.validator)  # fmt: skip
    counted = counted if counted is not None else {"0": len(slashings), "1": len(slashings)}
    return ByzantineReport(
        faults=list(faults),
        slashings=slashings,
        slashings_counted=counted,
        slashings_expected={"0": len(slashings), "1": len(slashings)},
    )


def test_equivocators_slashed_once_per_epoch_pass() -> None:
    good = report(
        fault(0, "replay", "none", [6], []),
        fault(1, "equivocate", "required", [5], [FIVE]),
        fault(2, "flood", "possible", [6], [SIX]),
    )
    result = judge_slashing(good)
    assert result.passed, result.explanation
    assert result.value == 2
    assert "validator 5 in epoch 2; validator 6 in epoch 3" in result.explanation
    assert "each counted exactly that" in result.explanation
    assert judge_slashing(None).passed  # no byzantine fault, nobody slashed


@pytest.mark.parametrize(
    ("faults", "counted", "problem"),
    [
        ([fault(1, "equivocate", "required", [5], [])], None, "fault 1 (equivocate): [5] not"),
        ([fault(1, "replay", "none", [5], [FIVE])], None, "validators [5] slashed without"),
        (
            [fault(1, "equivocate", "required", [5], [FIVE])],
            {"0": 1, "1": 2},
            "validator 1 counted 2 slashings for the 1 (offender, epoch) pairs",
        ),
    ],
)
def test_equivocators_slashed_once_per_epoch_fail(
    faults: list[ByzantineFault], counted: dict[str, int] | None, problem: str
) -> None:
    result = judge_slashing(report(*faults, counted=counted))
    assert not result.passed and problem in result.explanation


def test_commits_resume_takes_the_longest_stall_and_fails_a_halt() -> None:
    byzantine = report(
        fault(0, "replay", "none", [6], [], 2.5), fault(1, "flood", "none", [6], [], 7)
    )
    result = judge_commits_resume(byzantine, 10)
    assert result.passed and result.value == 7
    assert "fault 1 (flood [6]) 7 s <= 10 s, over 2 byzantine fault(s)" in result.explanation
    assert not judge_commits_resume(byzantine, 5).passed
    halted = report(fault(0, "replay", "none", [6], [], None))
    result = judge_commits_resume(halted, 10)
    assert (
        not result.passed and "committed nothing after fault 0 (replay [6])" in result.explanation
    )
    assert judge_commits_resume(None, 10).passed


# ----------------------------------------------------------------------------- simulator


def test_the_simulated_suite_reports_every_behaviour() -> None:
    plan = resolve_plan(load_scenario("byzantine-suite"), platform="sim", run_id="r1")
    raw = {
        "actions": {"flood": 900, "equivocate": 20, "unstake-escape": 18},
        "rejected_by_behaviour": {"flood": {"round_too_far_ahead": 4000}},
        "slash_events": [[4, 6], [5, 5], [5, 6]],
        "first_commit_s": [0.25 * h for h in range(1, 401)],
    }
    section = simulated_byzantine(
        [
            ByzantineWindow(f.index, f.behaviour, f.ids, f.start_s, f.end_s, None)
            for f in plan.faults
        ],
        raw,
        plan.network.validators,
    )
    assert section is not None and len(section.faults) == len(plan.faults)
    flood = next(f for f in section.faults if f.behaviour == "flood")
    assert flood.actions == 900 and flood.rejected == {"round_too_far_ahead": 4000}
    assert flood.longest_stall_s == pytest.approx(0.25)
    replay = next(f for f in section.faults if f.behaviour == "replay")
    assert replay.actions == 0 and replay.slashed == []
    equivocate = next(f for f in section.faults if f.behaviour == "equivocate")
    assert [(e.validator, e.epoch) for e in equivocate.slashed] == [(5, 5), (5, 6)]
    assert judge_slashing(section).passed


def test_a_simulated_report_carries_the_section(tmp_path: Path) -> None:
    plan = resolve_plan(load_scenario("byzantine-suite"), platform="sim", run_id="r1")
    result = SimRunResult(
        run_id="r1", scenario="byzantine-suite", command=("sim",), returncode=0,
        committed_height=400, safety_violations=0, slashed_validators=2, slashed_ids=(4, 5),
        simulated_seconds=100.0, wall_seconds=2.0, messages_sent=1, mode="balanced",
        crypto="modeled", finality_p50_ms=500.0, finality_p99_ms=900.0, notes=(),
        not_simulated=(),
        raw={"byzantine": {"actions": {}, "slash_events": [[4, 6], [5, 5]],
                           "first_commit_s": [0.25 * h for h in range(1, 401)]}},
    )  # fmt: skip
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    made = simulated_report(plan, result, moment, moment)
    assert made.byzantine is not None and made.passed, made.criteria
    assert {c.name for c in made.criteria} == {
        "safety",
        "commits_resume_within_s",
        "equivocators_slashed_exactly_once_per_epoch",
    }
    equivocate = next(f for f in made.faults if f.kind == "equivocate")
    assert equivocate.behaviour == "equivocate" and equivocate.slashed is True


# ----------------------------------------------------------------------------- files


def test_the_report_files_show_the_section(tmp_path: Path) -> None:
    byzantine = report(
        fault(0, "replay", "none", [6], []), fault(1, "equivocate", "required", [5], [FIVE])
    )
    base = SafetyReport(ok=True)
    made = Report(
        run_id="r1", scenario="s", platform="local", started=datetime(2025, 1, 1, tzinfo=UTC),
        ended=datetime(2025, 1, 1, tzinfo=UTC), safety=base, passed=True, byzantine=byzantine,
    )  # fmt: skip
    markdown = render_markdown(made)
    assert "## Byzantine behaviours" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| 1 | equivocate"))
    assert row.endswith("| 3 | none | required | 5@2 | 1 |")
    assert "Slashings: 5@2 (height 40, in 1 block(s))." in markdown
    assert "0: 1 / 1, 1: 1 / 1" in markdown
    html = render_html(made)
    assert '<table id="byzantine">' in html and "5@2" in html
    assert made.schema_minor == SCHEMA_MINOR


def test_a_report_written_before_schema_minor_reads_as_minor_0(tmp_path: Path) -> None:
    made = {
        "schema_version": 1, "run_id": "r1", "scenario": "s", "platform": "local",
        "started": "2025-01-01T00:00:00Z", "ended": "2025-01-01T00:00:00Z",
        "safety": {"ok": True}, "passed": True,
    }  # fmt: skip
    (tmp_path / "report.json").write_text(json.dumps(made))
    loaded = read_report(tmp_path)
    assert loaded.schema_minor == 0 and loaded.byzantine is None
