"""The short version of make endurance (benchmarks/endurance.py): 200 mixed transactions
(stripe and contactless) on the emulated board under -X heapsize=64k, with the same checks: no flash record
grows, no name is interned after the warm-up, the heap free at idle does not drift
down; every transaction reached a screen that says what happened, and none of them a
terminal error (a fragmented heap once failed 2.9% of visits at the answer's check)."""
from benchmarks import endurance


def test_200_mixed_transactions_leave_heap_flash_and_names_where_they_were():
    run = endurance.run(200, seed=7, lost_rate=0.0)
    assert len(run.heap) == len(run.flash) == len(run.names) == 200
    assert set(run.kinds) == {"balance", "purchase", "contactless", "damaged", "refused"}
    assert sum(run.outcomes.values()) == len(run.shown) == 200
    # a purchase whose answer failed or never came is never shown approved
    assert all(shown != "APPROVED" for kind, shown in zip(run.kinds, run.shown)
               if kind in ("damaged", "refused"))
    assert endurance.growth(run) == []
    assert run.faults == [], f"visits the board failed: {run.faults}"
