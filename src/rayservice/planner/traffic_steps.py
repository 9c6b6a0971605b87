"""The arithmetic of an incremental upgrade: moving traffic and Serve capacity step by step.

Traffic moves from a source cluster to a target cluster (active to pending during an upgrade,
pending back to active during a rollback). One call makes one step, chosen so that at every
moment:

- the target never gets more traffic than the capacity it was given (``traffic <= target``);
- the source keeps the capacity its traffic needs (``source >= 100 - traffic``);
- the two capacities together stay within ``100 + maxSurgePercent``.

Pure and tiny on purpose: the planner asks for the next step once per ``intervalSeconds``.
"""

from __future__ import annotations

from dataclasses import dataclass

FULL = 100


@dataclass(frozen=True)
class Split:
    """Serve ``target_capacity`` of both clusters and the target's share of traffic (%)."""

    source_capacity: int
    target_capacity: int
    target_traffic: int

    @property
    def done(self) -> bool:
        return (
            self.target_traffic == FULL
            and self.target_capacity == FULL
            and self.source_capacity == 0
        )


@dataclass(frozen=True)
class Step:
    split: Split
    reason: str


def next_step(split: Split, max_surge: int, step_size: int) -> Step | None:
    """The next move towards all traffic on the target, or None when there is nothing left."""
    surge, step = max(1, max_surge), max(1, step_size)
    traffic, source, target = split.target_traffic, split.source_capacity, split.target_capacity
    if traffic < target:
        moved = min(target, traffic + step)
        return Step(Split(source, target, moved), f"traffic to the target {traffic}% -> {moved}%")
    if source > FULL - traffic:
        lowered = max(FULL - traffic, source - surge)
        return Step(
            Split(lowered, target, traffic),
            f"source capacity {source}% -> {lowered}% (it carries {FULL - traffic}% of traffic)",
        )
    if target < FULL:
        raised = min(FULL, target + surge, FULL + surge - source)
        return Step(
            Split(source, raised, traffic),
            f"target capacity {target}% -> {raised}% (surge limit {FULL + surge}% in all)",
        )
    return None
