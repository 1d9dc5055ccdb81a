"""The workflow cache is bounded by the memory of its workflows (estimated
from their serialized state), not only by their number: a worker's cache
stays within OCOP_WORKFLOW_CACHE_MB however large its instances grow."""
from types import SimpleNamespace

import pytest

from engine.bpmn_engine import BpmnEngine
from engine.caches import MEMORY_PER_STATE_CHAR, WorkflowCache
from testkit.cycle import Cycle


def committed(instance_id: int, state_size: int, version: int = 1):
    """What WorkflowCache.keep reads of a committed call."""
    return SimpleNamespace(instance=SimpleNamespace(id=instance_id), new_version=version,
                           workflow=SimpleNamespace(script_engine=object()), state_size=state_size,
                           outcome=SimpleNamespace(ready_tasks=[]), timers={})


def test_the_least_recently_kept_go_when_the_bytes_are_spent():
    one = 10_000 * MEMORY_PER_STATE_CHAR  # an entry of 10,000 characters of state
    cache = WorkflowCache(max_bytes=3 * one, max_entries=100)
    for instance_id in range(1, 6):
        cache.keep(committed(instance_id, 10_000))
    assert cache.size == (3, 3 * one)
    assert [cache.peek(i) is not None for i in range(1, 6)] == [False, False, True, True, True]
    cache.keep(committed(6, 25_000))  # one large instance pushes out the older ones it needs
    assert cache.size == (1, 25_000 * MEMORY_PER_STATE_CHAR) and cache.peek(6) is not None
    cache.keep(committed(7, 40_000))  # larger than the whole budget: not kept at all
    assert cache.size == (0, 0)


def test_taking_replacing_and_forgetting_keep_the_count_of_bytes():
    cache = WorkflowCache(max_bytes=10**9, max_entries=2)
    cache.keep(committed(1, 100))
    cache.keep(committed(1, 300, version=2))  # the same instance again: replaced, not added
    assert cache.size == (1, 300 * MEMORY_PER_STATE_CHAR)
    cache.keep(committed(2, 100))
    cache.keep(committed(3, 100))  # the count bound still holds
    assert cache.size == (2, 200 * MEMORY_PER_STATE_CHAR)
    assert cache.take(2).size == 100 * MEMORY_PER_STATE_CHAR
    cache.forget(3)
    assert cache.size == (0, 0)


def test_the_engine_weighs_what_it_caches(world):
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    cycle.do("register_idea")
    entries, used = world.workflows.size
    assert entries >= 1 and used >= world.workflows.peek(cycle.instance_id).size > 0


def test_the_bound_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("OCOP_WORKFLOW_CACHE_MB", "5")
    monkeypatch.setenv("OCOP_STEP_BUDGET", "300")
    monkeypatch.setenv("OCOP_DATABASE_URL", "sqlite://")
    engine = BpmnEngine.from_environment()
    try:
        assert (engine.workflows.max_bytes, engine.step_budget) == (5 * 1024 * 1024, 300)
        monkeypatch.setenv("OCOP_STEP_BUDGET", "0")
        with pytest.raises(ValueError, match="OCOP_STEP_BUDGET"):
            BpmnEngine.from_environment()
    finally:
        engine.db.dispose()
