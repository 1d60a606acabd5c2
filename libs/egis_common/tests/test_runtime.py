"""What `serve` does for every service once it has started."""

from __future__ import annotations

import gc
import weakref

import pytest

from egis_common.runtime import freeze_what_lives_on


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector can free it


@pytest.fixture
def unfreezes():
    yield
    gc.unfreeze()


async def test_what_is_alive_at_start_leaves_the_collectors_sight_and_garbage_is_not_kept(unfreezes):
    alive = Node()
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    gc.disable()  # no collection on its own between here and the freeze
    try:
        assert gone() is not None and any(o is alive for o in gc.get_objects())
        await freeze_what_lives_on()
    finally:
        gc.enable()
    assert not any(o is alive for o in gc.get_objects()), "a full collection no longer scans what lived at start"
    assert gone() is None, "garbage is collected before the freeze, not frozen for good"
