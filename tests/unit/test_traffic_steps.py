"""The arithmetic of incremental upgrades: every walk ends, and no step breaks an invariant.

``next_step`` is asked again and again, starting from all capacity and traffic on the source
(``Split(100, 0, 0)``), for many (maxSurgePercent, stepSizePercent) pairs. Each split on the way
must keep the three rules of the module docstring, only move towards the target, and the walk
must reach ``done`` within the number of steps the arithmetic allows. A few walks are spelled
out step by step, so a change of behaviour shows up as a readable diff.
"""

from __future__ import annotations

import itertools
import math

import pytest

from rayservice.planner.traffic_steps import FULL, Split, Step, next_step

SURGES = (1, 5, 20, 25, 33, 50, 100)
STEP_SIZES = (1, 10, 33, 100)
START = Split(source_capacity=FULL, target_capacity=0, target_traffic=0)


def broken_rules(split: Split, surge: int) -> list[str]:
    """The invariants of ``traffic_steps`` that ``split`` breaks (empty when it keeps them)."""
    broken = []
    if not 0 <= split.target_traffic <= split.target_capacity:
        broken.append("the target has more traffic than capacity")
    if split.source_capacity < FULL - split.target_traffic:
        broken.append("the source lacks capacity for its traffic")
    if split.source_capacity + split.target_capacity > FULL + surge:
        broken.append(f"capacities exceed {FULL + surge}%")
    if not (0 <= split.source_capacity <= FULL and 0 <= split.target_capacity <= FULL):
        broken.append("a capacity is outside 0-100%")
    return broken


def walk(split: Split, surge: int, step_size: int, limit: int = 1000) -> list[Step]:
    """Every step from ``split`` until ``next_step`` has nothing left (at most ``limit``)."""
    steps: list[Step] = []
    while len(steps) < limit:
        step = next_step(split, surge, step_size)
        if step is None:
            return steps
        steps.append(step)
        split = step.split
    raise AssertionError(f"no end after {limit} steps from {split} (surge {surge})")


def step_bound(surge: int, step_size: int) -> int:
    """Most steps a walk from START may take: the target's capacity rises by ``surge`` at a
    time; after each rise, traffic follows in steps of ``step_size`` and the source gives up
    the capacity it no longer needs in one step."""
    return math.ceil(FULL / surge) * (math.ceil(surge / step_size) + 2)


@pytest.mark.parametrize(("surge", "step_size"), itertools.product(SURGES, STEP_SIZES))
def test_a_walk_from_the_start_keeps_every_rule_and_ends_done(surge: int, step_size: int) -> None:
    steps = walk(START, surge, step_size)

    assert steps, "a fresh upgrade has work to do"
    assert steps[-1].split.done
    assert len(steps) <= step_bound(surge, step_size)
    before = START
    for step in steps:
        after = step.split
        assert broken_rules(after, surge) == [], f"{before} -> {after}: {step.reason}"
        changed = [
            field
            for field in ("source_capacity", "target_capacity", "target_traffic")
            if getattr(before, field) != getattr(after, field)
        ]
        assert len(changed) == 1, f"one thing moves per step, not {changed}: {before} -> {after}"
        # only ever towards the target, and never by more than one step's worth
        assert 0 < after.target_traffic - before.target_traffic <= step_size or (
            after.target_traffic == before.target_traffic
        )
        assert 0 <= after.target_capacity - before.target_capacity <= surge
        assert 0 <= before.source_capacity - after.source_capacity <= surge
        assert not before.done
        before = after


@pytest.mark.parametrize(("surge", "step_size"), itertools.product(SURGES, STEP_SIZES))
def test_a_walk_never_stops_short_of_done(surge: int, step_size: int) -> None:
    """``next_step`` says there is nothing left exactly when the split is done."""
    for step in walk(START, surge, step_size)[:-1]:
        assert not step.split.done
        assert next_step(step.split, surge, step_size) is not None
    assert next_step(Split(0, FULL, FULL), surge, step_size) is None


def valid_splits(surge: int, grain: int) -> list[Split]:
    return [
        split
        for source, target, traffic in itertools.product(range(0, FULL + 1, grain), repeat=3)
        if not broken_rules(split := Split(source, target, traffic), surge)
    ]


@pytest.mark.parametrize(("surge", "step_size"), [(1, 10), (20, 33), (25, 10), (50, 1), (100, 7)])
def test_a_walk_from_any_valid_split_keeps_the_rules_and_ends_done(
    surge: int, step_size: int
) -> None:
    """A rollback starts wherever the upgrade was, with source and target swapped: every valid
    split must lead to done without breaking a rule."""
    starts = valid_splits(surge, grain=10)
    assert START in starts and Split(0, FULL, FULL) in starts and len(starts) >= 11
    for start in starts:
        steps = walk(start, surge, step_size)
        assert start.done == (steps == [])
        assert (steps[-1].split if steps else start).done, start
        for step in steps:
            assert broken_rules(step.split, surge) == [], f"from {start}: {step.reason}"


def test_a_rollback_from_the_middle_of_an_upgrade_hands_everything_back() -> None:
    """Mid-upgrade the active cluster has 50% capacity and 50% traffic, the pending one 75%
    and 50%; stepping back swaps the roles: the pending cluster is now the source."""
    back = Split(source_capacity=75, target_capacity=50, target_traffic=50)

    splits = [step.split for step in walk(back, surge=25, step_size=25)]

    assert [(s.source_capacity, s.target_capacity, s.target_traffic) for s in splits] == [
        (50, 50, 50),
        (50, 75, 50),
        (50, 75, 75),
        (25, 75, 75),
        (25, 100, 75),
        (25, 100, 100),
        (0, 100, 100),
    ]


def triples(steps: list[Step]) -> list[tuple[int, int, int]]:
    return [
        (s.split.source_capacity, s.split.target_capacity, s.split.target_traffic) for s in steps
    ]


def test_full_surge_and_full_step_take_three_steps() -> None:
    steps = walk(START, surge=100, step_size=100)

    assert triples(steps) == [(100, 100, 0), (100, 100, 100), (0, 100, 100)]
    assert [s.reason for s in steps] == [
        "target capacity 0% -> 100% (surge limit 200% in all)",
        "traffic to the target 0% -> 100%",
        "source capacity 100% -> 0% (it carries 0% of traffic)",
    ]


def test_surge_25_step_10_moves_a_quarter_of_capacity_at_a_time() -> None:
    steps = walk(START, surge=25, step_size=10)

    assert triples(steps) == [
        (100, 25, 0),
        (100, 25, 10),
        (100, 25, 20),
        (100, 25, 25),
        (75, 25, 25),
        (75, 50, 25),
        (75, 50, 35),
        (75, 50, 45),
        (75, 50, 50),
        (50, 50, 50),
        (50, 75, 50),
        (50, 75, 60),
        (50, 75, 70),
        (50, 75, 75),
        (25, 75, 75),
        (25, 100, 75),
        (25, 100, 85),
        (25, 100, 95),
        (25, 100, 100),
        (0, 100, 100),
    ]


def test_surge_50_step_100_never_sends_more_than_the_target_can_take() -> None:
    steps = walk(START, surge=50, step_size=100)

    assert triples(steps) == [
        (100, 50, 0),
        (100, 50, 50),
        (50, 50, 50),
        (50, 100, 50),
        (50, 100, 100),
        (0, 100, 100),
    ]


def test_surge_that_does_not_divide_100_ends_with_a_smaller_rise() -> None:
    steps = walk(START, surge=33, step_size=33)

    assert triples(steps)[-4:] == [
        (1, 99, 99),
        (1, 100, 99),
        (1, 100, 100),
        (0, 100, 100),
    ]
    assert max(s.split.source_capacity + s.split.target_capacity for s in steps) == 133


@pytest.mark.parametrize(
    ("split", "done"),
    [
        (Split(0, 100, 100), True),
        (Split(1, 100, 100), False),
        (Split(0, 99, 99), False),
        (Split(0, 100, 99), False),
        (Split(100, 0, 0), False),
    ],
)
def test_done_means_all_traffic_and_capacity_on_the_target(split: Split, done: bool) -> None:
    assert split.done is done
