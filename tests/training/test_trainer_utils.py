import gc

from training.trainer_utils import gc_frozen


def test_gc_frozen_freezes_only_for_the_block():
    assert gc.get_freeze_count() == 0
    with gc_frozen():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_gc_frozen_leaves_a_callers_own_freeze_alone():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_frozen():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
