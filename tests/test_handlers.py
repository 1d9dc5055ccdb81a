"""Service-task handlers: what they write, and that re-running never doubles it."""
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select

from handlers import registry
from handlers.promotion import add_months
from handlers.ranking import council_average, recognised_stars, stars_for_score
from handlers.registry import HandlerContext, HandlerParameterError
from storage.models import Enrolment, ProcessInstance, PromotionListing, Training
from testkit.cycle import Cycle

NOW = datetime(2026, 3, 2, 8, tzinfo=timezone.utc)


@pytest.mark.parametrize("average,stars", [
    (100, 5), (90, 5), (89.99, 4), (70, 4), (69.99, 3), (50, 3), (49.99, 2), (30, 2), (29.9, 1), (0, 1)])
def test_star_bands(average, stars):
    assert stars_for_score(average) == stars


def test_council_average_and_recognition():
    sheets = [{"part_a": 30, "part_b": 20, "part_c": 25}, {"part_a": 32, "part_b": 20, "part_c": 27}]
    assert council_average(sheets) == 77.0
    assert recognised_stars(5, 3) == 3 and recognised_stars(4, 4) == 4 and recognised_stars(2, 5) == 0


def test_certificate_months_clamp_to_month_end():
    assert add_months(date(2026, 3, 2), 36) == date(2029, 3, 2)
    assert add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)


def call(world, instance_id, name, **params):
    with world.db.transaction() as session:
        instance = session.get(ProcessInstance, instance_id)
        context = HandlerContext(session, instance, "test_element", {"stars": params.get("stars")},
                                 NOW.date(), NOW)
        return registry.get(name).call(context, params)


def test_schedule_training_is_idempotent(world):
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    first = call(world, cycle.instance_id, "schedule_training", topic="business_plan")
    again = call(world, cycle.instance_id, "schedule_training", topic="business_plan")
    assert first == again
    with world.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Enrolment)) == 1
        training = session.get(Training, first["training_id"])
        assert training.enrolled == 1 and training.starts_on.weekday() == 1
        assert training.starts_on >= date(2026, 3, 16)


def test_a_full_session_opens_a_new_one(world):
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    other = Cycle(world, "Gạo hữu cơ Gio Mỹ").start()
    first = call(world, cycle.instance_id, "schedule_training", topic="implementation")
    with world.db.transaction() as session:
        session.get(Training, first["training_id"]).capacity = 1
    second = call(world, other.instance_id, "schedule_training", topic="implementation")
    assert second["training_id"] != first["training_id"]


def test_promotion_listing_once_per_instance(world):
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    first = call(world, cycle.instance_id, "publish_promotion_listing", stars=4, channels=["ecommerce"])
    again = call(world, cycle.instance_id, "publish_promotion_listing", stars=4, channels=["ecommerce"])
    assert first == again and first["valid_until"] == "2029-03-02"
    with world.db.transaction() as session:
        listing = session.scalar(select(PromotionListing))
        assert (listing.product_name, listing.commune_name, listing.group_code) == \
            ("Hồ tiêu Gio Linh", "Xã Gio Mỹ", "S10")


@pytest.mark.parametrize("name,params", [
    ("publish_promotion_listing", {"stars": 2, "channels": ["ecommerce"]}),   # below 3 stars
    ("publish_promotion_listing", {"stars": 4, "channels": ["billboard"]}),
    ("schedule_training", {"topic": "cooking"}),
    ("rank_product", {"level": "district", "sheets": [], "max_stars": 3}),
    ("notify", {"recipient": "everyone", "kind": "recognised"}),
])
def test_handlers_refuse_bad_parameters(world, name, params):
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start()
    with pytest.raises(HandlerParameterError):
        call(world, cycle.instance_id, name, **params)


def test_every_handler_declares_its_parameters():
    for handler in registry.all_handlers().values():
        declared, required = handler.parameter_names()
        assert declared and required <= declared and handler.description
