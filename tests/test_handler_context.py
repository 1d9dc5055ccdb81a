"""What a service-task handler is given: the same typed, read-only view of
its instance (handlers/context.py InstanceView) on every path -- a live
engine call, and the replay that re-runs pure handlers."""
from __future__ import annotations

import dataclasses

import pytest

from audit.verification import verify_instance
from handlers import registry
from handlers.context import InstanceView, ProductView
from testkit.cycle import Cycle, sheets

PEPPER = "Hồ tiêu Gio Linh"


@pytest.fixture
def seen(monkeypatch):
    """The instances the training and ranking handlers are given."""
    instances = []
    for name in ("schedule_training", "rank_council"):
        handler = registry.get(name)
        real = handler.function

        def spy(context, _real=real, **params):
            instances.append(context.instance)
            return _real(context, **params)
        monkeypatch.setattr(handler, "function", spy)
    return instances


def test_a_live_call_gives_handlers_a_read_only_view(world, seen):
    cycle = Cycle(world, PEPPER).start()
    for form_key in ("register_idea", "receive_idea", "review_idea"):
        cycle.do(form_key)
    assert len(seen) == 1  # the training after the accepted idea
    view = seen[0]
    instance = cycle.instance()
    assert type(view) is InstanceView and type(view.product) is ProductView
    assert (view.id, view.product_id, view.product.name, view.year) == (instance.id, instance.product_id, PEPPER,
                                                                        instance.year)
    assert dict(view.areas) == instance.areas and view.jurisdiction_id == instance.jurisdiction_id
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.year = 1999
    with pytest.raises(TypeError):
        view.areas["province"] = 0


def test_the_replay_gives_handlers_the_same_view(world, seen):
    cycle = Cycle(world, PEPPER).start().through_dossier()
    cycle.do("score_product", sheets(60))
    live = [view for view in seen if view.id == cycle.instance_id]
    seen.clear()
    assert verify_instance(world, cycle.instance_id).ok
    # The replay runs only the pure handler again (ranking); it sees what the live call saw.
    ranking_views = [view for view in seen if view.id == cycle.instance_id]
    assert ranking_views and all(type(view) is InstanceView for view in ranking_views)
    assert {(view.id, view.product, dict(view.areas)) == (live[0].id, live[0].product, dict(live[0].areas))
            for view in ranking_views} == {True}
