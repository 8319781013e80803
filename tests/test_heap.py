"""Freezing the objects made at start keeps them out of later collections."""

from __future__ import annotations

import gc

from shared.heap import freeze_startup_objects


def test_startup_objects_are_frozen_and_collections_skip_them() -> None:
    try:
        freeze_startup_objects()
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the modules and types imported so far
        assert len(gc.get_objects(generation=2)) < frozen
    finally:
        gc.unfreeze()
