"""Freezing the objects made at start keeps them out of later collections."""

from __future__ import annotations

import gc

from shared.heap import YOUNG_THRESHOLD, freeze_startup_objects


def test_startup_objects_are_frozen_and_collections_skip_them() -> None:
    threshold = gc.get_threshold()
    try:
        freeze_startup_objects()
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the modules and types imported so far
        assert len(gc.get_objects(generation=2)) < frozen
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
