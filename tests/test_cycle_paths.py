"""Every path of both diagrams, through the real engine and database
(SQLite and PostgreSQL), as real users of the demo world."""
import pytest
from sqlalchemy import func, select

from storage.models import Enrolment, InboxTask, Notification, PromotionListing, Training
from testkit.cycle import RETURN, Cycle, returned, sheets

SEED = "Hồ tiêu Gio Linh"        # Quảng Trị: the seed-era diagram
TWO_TIER = "Rượu mận Sa Pa"      # Lào Cai: its own two-tier variant


def scored(world, district=None, province=None, central=None):
    cycle = Cycle(world, SEED).start().through_dossier()
    cycle.do("score_product", sheets(district))
    if province is not None:
        cycle.do("score_product", sheets(province))
    if central is not None:
        cycle.do("score_product", sheets(central))
    return cycle


def finished(cycle, end_event, stars):
    instance = cycle.instance()
    assert (instance.status, instance.end_event, instance.stars) == ("completed", end_event, stars)
    assert cycle.ready() == []


def count(world, model, **where):
    with world.db.transaction() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.scalar(query)


def test_the_first_tasks_follow_the_seed_lanes(world):
    cycle = Cycle(world, SEED).start()
    assert cycle.ready_forms() == ["register_idea"]
    assert cycle.task("register_idea").role == "producer"
    cycle.do("register_idea")
    assert cycle.task("receive_idea").role == "commune_officer"
    cycle.do("receive_idea")
    assert cycle.task("review_idea").role == "district_officer"


@pytest.mark.parametrize("district,province,central,stars", [
    (55, None, None, 3),     # 50-69: recognised 3 stars by the district
    (69, None, None, 3),     # sheets add up to whole points; 69.996 is in tests/test_council_rules.py
    (75, 80, None, 4),       # 70+: the province council recognises 4 stars
    (75, 65, None, 3),       # the province scores lower: its own rank stands
    (92, 93, 95, 5),         # 90+ at the province: the central council, 5 stars
    (92, 91, 85, 4),         # below 90 at the central council: the province's 4 stars stand
])
def test_recognised_products_are_ranked_and_promoted(world, district, province, central, stars):
    cycle = scored(world, district, province, central)
    finished(cycle, "end_recognised", stars)
    with world.db.transaction() as session:
        listing = session.scalar(select(PromotionListing).where(
            PromotionListing.instance_id == cycle.instance_id))
        assert listing.stars == stars
        assert (listing.valid_until - listing.certified_on).days in range(1095, 1098)  # 36 months
        kinds = session.scalars(select(Notification.kind).where(
            Notification.instance_id == cycle.instance_id)).all()
    assert kinds[-1] == "recognised"
    # two trainings: writing the plan, then implementing it
    assert count(world, Enrolment, instance_id=cycle.instance_id) == 2


@pytest.mark.parametrize("district,province", [(49.9, None), (30, None), (72, 45)])
def test_below_50_ends_without_recognition(world, district, province):
    cycle = scored(world, district, province)
    finished(cycle, "end_not_recognised", None)
    assert count(world, PromotionListing, instance_id=cycle.instance_id) == 0


def test_returned_idea_goes_back_with_reasons_and_can_be_resubmitted(world):
    cycle = Cycle(world, SEED).start()
    cycle.do("register_idea")
    cycle.do("receive_idea")
    cycle.do("review_idea", returned("review_idea"))
    assert cycle.ready_forms() == ["register_idea"]
    data = cycle.data()
    assert data["idea_returns"] == 1 and data["return_reasons"] == RETURN["reasons"]
    with world.db.transaction() as session:
        note = session.scalars(select(Notification).where(
            Notification.instance_id == cycle.instance_id).order_by(Notification.id)).all()[-1]
    assert (note.kind, note.reasons) == ("idea_returned", RETURN["reasons"])
    cycle.do("register_idea")
    cycle.do("receive_idea")
    cycle.do("review_idea")
    assert cycle.ready_forms() == ["submit_plan"]


@pytest.mark.parametrize("loop_form,review_form,end_event", [
    ("register_idea", "review_idea", "end_idea_limit"),
    ("submit_plan", "review_plan", "end_plan_limit"),
])
def test_loop_limit_ends_the_cycle_for_this_year(world, loop_form, review_form, end_event):
    cycle = Cycle(world, SEED).start()
    for form_key in ("register_idea", "receive_idea", "review_idea", "submit_plan"):
        if form_key == review_form:
            break
        cycle.do(form_key)
    for attempt in range(1, 4):  # three returns: the producer may resubmit each time
        cycle.do(review_form, returned(review_form))
        assert loop_form in cycle.ready_forms(), f"return {attempt} should allow a resubmission"
        cycle.do(loop_form)
        if review_form == "review_idea":
            cycle.do("receive_idea")
    cycle.do(review_form, returned(review_form))  # the fourth return exceeds the maximum of 3
    finished(cycle, end_event, None)
    assert cycle.data()[loop_form.split("_")[-1] + "_returns"] == 4


def test_returned_dossier_is_revised_without_reopening_step_4(world):
    cycle = Cycle(world, SEED).start()
    for form_key in ("register_idea", "receive_idea", "review_idea", "submit_plan", "review_plan"):
        cycle.do(form_key)
    assert cycle.ready_forms() == ["submit_dossier", "support_record"]  # in parallel
    cycle.do("support_record")
    cycle.do("submit_dossier")
    cycle.do("check_dossier", returned("check_dossier"))
    revise = cycle.task("submit_dossier")
    assert revise.element_id == "task_revise_dossier"
    cycle.do("submit_dossier")
    cycle.do("check_dossier")
    assert cycle.ready_forms() == ["council_attendance"]


def test_trainings_are_real_sessions_shared_by_an_area(world):
    first = Cycle(world, SEED).start()
    second = Cycle(world, "Gạo hữu cơ Gio Mỹ").start()
    for cycle in (first, second):
        for form_key in ("register_idea", "receive_idea", "review_idea"):
            cycle.do(form_key)
    with world.db.transaction() as session:
        trainings = session.scalars(select(Training)).all()
    assert len(trainings) == 1  # same district and topic: one session, two seats
    assert (trainings[0].topic, trainings[0].enrolled) == ("business_plan", 2)
    assert "Gio Linh" in trainings[0].title


# --- the two-tier variant (Lào Cai) -----------------------------------------

def test_two_tier_has_no_district(world):
    cycle = Cycle(world, TWO_TIER).start()
    cycle.do("register_idea")
    assert cycle.task("review_idea").role == "commune_officer"
    cycle.through_dossier()
    assert cycle.task("score_product").role == "province_council"
    with world.db.transaction() as session:
        roles = set(session.scalars(select(InboxTask.role)))
    assert "district_officer" not in roles and "district_council" not in roles


@pytest.mark.parametrize("province,central,end_event,stars", [
    (60, None, "end_recognised", 3),
    (85, None, "end_recognised", 4),
    (95, 92, "end_recognised", 5),
    (95, 80, "end_recognised", 4),
    (40, None, "end_not_recognised", None),
])
def test_two_tier_ranking(world, province, central, end_event, stars):
    cycle = Cycle(world, TWO_TIER).start().through_dossier()
    cycle.do("score_product", sheets(province))
    if central is not None:
        assert cycle.task("score_product").role == "central_council"
        cycle.do("score_product", sheets(central))
    finished(cycle, end_event, stars)


@pytest.mark.parametrize("returning_form", ["commune_assessment", "advisory_review"])
def test_two_tier_dossier_returns_from_commune_or_advisory_team(world, returning_form):
    cycle = Cycle(world, TWO_TIER).start()
    for form_key in ("register_idea", "review_idea", "submit_plan", "review_plan",
                     "support_record", "submit_dossier"):
        cycle.do(form_key)
    if returning_form == "advisory_review":
        cycle.do("commune_assessment")
    cycle.do(returning_form, returned(returning_form))
    assert cycle.ready_forms() == ["submit_dossier"]
    assert cycle.data()["dossier_returns"] == 1
    cycle.do("submit_dossier")
    cycle.do("commune_assessment")
    cycle.do("advisory_review")
    assert cycle.task("score_product").role == "province_council"


def test_two_tier_dossier_loop_limit(world):
    cycle = Cycle(world, TWO_TIER).start()
    for form_key in ("register_idea", "review_idea", "submit_plan", "review_plan",
                     "support_record", "submit_dossier"):
        cycle.do(form_key)
    for _ in range(3):
        cycle.do("commune_assessment", returned("commune_assessment"))
        cycle.do("submit_dossier")
    cycle.do("commune_assessment")
    cycle.do("advisory_review", returned("advisory_review"))  # the fourth return, from the advisory team
    finished(cycle, "end_dossier_limit", None)


def test_the_resubmission_limit_is_configurable(world):
    world.max_resubmissions = 1
    cycle = Cycle(world, SEED).start()
    for form_key in ("register_idea", "receive_idea", "review_idea", "submit_plan"):
        cycle.do(form_key)
    cycle.do("review_plan", returned("review_plan"))
    cycle.do("submit_plan")
    cycle.do("review_plan", returned("review_plan"))  # the second return exceeds a limit of 1
    finished(cycle, "end_plan_limit", None)


# Starred minimums are no longer ticked by hand: rank_council reads them from
# every criterion's average (tests/test_council_rules.py, the B.4.1 case;
# tests/test_council_sessions.py, through the engine).
