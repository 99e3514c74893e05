"""Run slots per tenant on every back end: taken up to the limit, given back, expired."""

from __future__ import annotations

from podium.stores.run_slots import RunSlots
from tests.helpers import Clock


def test_slots_up_to_the_limit_then_refused_until_one_is_given_back(db, tenant):
    slots = RunSlots(db, clock=Clock())
    taken = [slots.take(tenant, 2) for _ in range(3)]
    assert [t.busy for t in taken] == [0, 1, 2]
    assert taken[0].slot_id and taken[1].slot_id and taken[2].slot_id is None
    assert slots.busy(tenant) == 2
    slots.release(taken[0].slot_id)
    slots.release(taken[0].slot_id)  # twice is harmless
    again = slots.take(tenant, 2)
    assert again.slot_id is not None and again.busy == 1


def test_tenants_have_their_own_slots(db, tenant):
    slots = RunSlots(db, clock=Clock())
    assert slots.take(tenant, 1).slot_id is not None
    assert slots.take(tenant, 1).slot_id is None
    assert slots.take(f"{tenant}-other", 1).slot_id is not None


def test_a_slot_never_given_back_expires_after_its_lease(db, tenant):
    clock = Clock()
    slots = RunSlots(db, clock=clock, lease=60.0)
    assert slots.take(tenant, 1).slot_id is not None  # its process dies holding it
    assert slots.take(tenant, 1).slot_id is None
    clock.now += 61.0
    assert slots.busy(tenant) == 0
    assert slots.take(tenant, 1).slot_id is not None
