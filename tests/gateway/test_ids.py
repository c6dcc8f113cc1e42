"""Identifiers: a readable prefix and 24 lower-case base32 symbols; sortable ones sort by time."""

from __future__ import annotations

import re
import time

from gateway.ids import new_id, new_sortable_id

FORMAT = re.compile(r"^job_[a-z2-7]{24}$")


def test_ids_have_the_prefix_and_24_base32_symbols():
    ids = {new_id("job") for _ in range(1000)} | {new_sortable_id("job") for _ in range(1000)}
    assert len(ids) == 2000
    assert all(FORMAT.fullmatch(i) for i in ids)


def test_sortable_ids_made_later_sort_after_earlier_ones():
    earlier = [new_sortable_id("job") for _ in range(100)]
    time.sleep(0.002)  # the next millisecond at least
    later = new_sortable_id("job")
    assert all(i < later for i in earlier)
