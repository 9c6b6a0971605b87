"""Each cluster's share of a front (what a Kubernetes front routes by): the active cluster first,
the slots' percents while traffic steps, and a cluster that cannot serve as a whole giving its
share to the other, as HAProxy drains its servers."""

from __future__ import annotations

import pytest

from rayservice.planner.front import front_spec
from rayservice.planner.record import ClusterSlot, ServiceRecord
from rayservice.spec.observed import ObservedCluster
from rayservice.spec.vocabulary import RolloutPhase
from tests.unit.test_planner import observed_cluster

ACTIVE, PENDING = "demo-raycluster-aaaaa", "demo-raycluster-bbbbb"


def slot(name: str, percent: int) -> ClusterSlot:
    return ClusterSlot(name=name, spec_hash="h", cluster_spec={}, traffic_percent=percent)


def stepping(
    phase: RolloutPhase = RolloutPhase.STEPPING, restarting: tuple[str, ...] = ()
) -> ServiceRecord:
    return ServiceRecord(
        phase=phase,
        active=slot(ACTIVE, 70),
        pending=slot(PENDING, 30),
        serve_port=8000,
        dashboard_port=8265,
        serve_restarting=list(restarting),
    )


def cluster(name: str, **changes: object) -> ObservedCluster:
    return observed_cluster(name, proxies=("head", "w0", "w1"), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("phase", [RolloutPhase.STEPPING, RolloutPhase.ROLLING_BACK])
def test_while_traffic_steps_each_cluster_has_its_slots_percent(phase: RolloutPhase) -> None:
    spec = front_spec(stepping(phase), False, cluster(ACTIVE), cluster(PENDING))

    assert spec.shares == ((ACTIVE, 70), (PENDING, 30))
    assert spec.active_cluster == ACTIVE


def test_a_cluster_whose_head_is_gone_gives_its_share_to_the_other() -> None:
    headless = cluster(PENDING, failed=("head",))  # no GCS fault tolerance: it hangs requests

    spec = front_spec(stepping(), False, cluster(ACTIVE), headless)

    assert spec.shares == ((ACTIVE, 100), (PENDING, 0))


def test_a_missing_or_restarting_active_cluster_gives_its_share_to_the_pending_one() -> None:
    missing = front_spec(stepping(), False, None, cluster(PENDING))
    record = stepping(restarting=(ACTIVE,))  # its Serve starts again from nothing
    restarting = front_spec(record, False, cluster(ACTIVE), cluster(PENDING))

    assert missing.shares == ((ACTIVE, 0), (PENDING, 100))
    assert restarting.shares == ((ACTIVE, 0), (PENDING, 100))
    assert missing.active_cluster == ACTIVE  # the Services stay until the switch


def test_outside_an_incremental_upgrade_the_active_cluster_takes_all() -> None:
    record = stepping(RolloutPhase.STARTING)  # NewCluster: the pending one waits

    spec = front_spec(record, False, cluster(ACTIVE), cluster(PENDING))

    assert spec.shares == ((ACTIVE, 100),)
