"""Which stored templates fill the template slots at each frame (official ``template_update_sampling``, spec 7.3).

The trackers store one template per frame (the initial crop, then a crop of every predicted box). With ``n``
templates stored, slot 0 is the oldest used and slot ``num_slots - 1`` the newest.
"""
from __future__ import annotations

import math

EARLY_SCHEDULES = ("mode1", "distill")
SAMPLING_METHODS = ("exponential", "linear")
#: Decay of the official "exponential" sampling.
EXPONENTIAL_BASE = 0.7


def sampled_indices(num_stored: int, num_slots: int = 5, method: str = "exponential") -> list[int]:
    """Stored-template indices for the slots once ``num_stored >= num_slots`` (first oldest, last newest).

    * exponential (fartrack, distill and sparse trackers): [0, floor((n-1)(1-0.7^k)) for k = 1..S-2, n-1];
    * linear (the vestigial seq tracker): [floor(i(n-1)/(S-1)) for i = 0..S-2] + [n-1].
    """
    last = num_stored - 1
    if method == "exponential":
        middle = [int(last * (1 - EXPONENTIAL_BASE**k)) for k in range(1, num_slots - 1)]
        return [0, *middle, last]
    if method == "linear":
        return [math.floor(i * last / (num_slots - 1)) for i in range(num_slots - 1)] + [last]
    raise ValueError(f"unknown template sampling {method!r}; choose one of {SAMPLING_METHODS}")


def early_indices(num_stored: int, num_slots: int = 5, schedule: str = "mode1") -> list[int]:
    """Slot indices while fewer than ``num_slots`` templates are stored.

    * mode1 (fartrack, sparse): slot p holds stored index max(0, p - (S - n)): the newest sit in the last slots,
      e.g. n = 2 -> (0, 0, 0, 0, 1);
    * distill: slots 1..n hold stored 0..n-1 and the others keep the initial template,
      e.g. n = 2 -> (0, 0, 1, 0, 0), n = 4 -> (0, 0, 1, 2, 3).
    """
    if schedule == "mode1":
        return [max(0, p - (num_slots - num_stored)) for p in range(num_slots)]
    if schedule == "distill":
        slots = [0] * num_slots
        for stored in range(num_stored):
            slots[stored + 1] = stored
        return slots
    raise ValueError(f"unknown early-frame schedule {schedule!r}; choose one of {EARLY_SCHEDULES}")


def slot_indices(num_stored: int, num_slots: int = 5, schedule: str = "mode1", method: str = "exponential"
                 ) -> list[int]:
    """Stored-template index of every slot when ``num_stored`` templates are stored (``num_stored >= 1``)."""
    if num_stored < 1:
        raise ValueError("at least the initial template must be stored")
    if num_stored < num_slots:
        return early_indices(num_stored, num_slots, schedule)
    return sampled_indices(num_stored, num_slots, method)


def oldest_needed(num_stored: int, num_slots: int = 5, method: str = "exponential") -> int:
    """Smallest stored index > 0 any later frame can still use (indices never decrease as n grows).

    Lets a tracker forget templates in between without changing any slot assignment.
    """
    if num_stored < num_slots:
        return 1
    return max(1, sampled_indices(num_stored, num_slots, method)[1])
