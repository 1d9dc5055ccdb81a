"""The demo data `ocop init --demo` seeds.

The demo is a small, realistic slice of the programme: Quảng Trị province
on the seed-era cycle (districts Gio Linh and Cam Lộ), and Lào Cai on its
own two-tier variant (communes directly under the province, as after
July 2025), with officers for every role and producers whose products stand
at different steps of the cycle.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import select

from demo.history import VIETNAM, seed_history
from engine.access import load_actor
from engine.bpmn_engine import BpmnEngine
from engine.driver import AUTHORITY_OF_ROLE, Driver
from engine.samples import SampleDecider
from engine.sandbox import seed_world
from programme.accounts import create_user, hash_password
from programme.councils import add_member, create_council, open_session, sign_off_session
from programme.definitions import Deployed, deploy_bundled
from programme.recognition import issue_decision
from storage.council_models import Council
from storage.models import InboxTask, Jurisdiction, ProcessInstance, Product, User
from storage.recognition_models import RoundEntry

# Every demo account signs in with this password (demo mode only).
DEMO_PASSWORD = "ocop-demo"
# Accounts to try first, one per kind of user (README.md lists them all).
DEMO_ACCOUNTS = (
    ("admin", "administrator"),
    ("qlct.qt", "program manager of Quảng Trị"),
    ("kiemtoan", "auditor"),
    ("cb.qt-gl-gm", "commune OCOP officer of Gio Mỹ"),
    ("htx.giomy", "producer: HTX Nông nghiệp Gio Mỹ"),
)

# Where each demo product is left: (product name, form key it waits at or
# None to run to the end, true quality of the product).
DEMO_PROGRESS = [
    ("Hồ tiêu Gio Linh", "council_attendance", 66.0),  # then DEMO_SESSIONS: 3 stars, minutes confirmed
    ("Gạo hữu cơ Gio Mỹ", "council_attendance", 60.0),  # then DEMO_SESSIONS: members still scoring
    ("Tinh dầu tràm Cam Lộ", "council_attendance", 78.0),  # Cam Lộ has no council yet: qlct.qt sets it up
    ("Mật ong rừng Gio Sơn", "review_plan", 70.0),
    ("Cá khô Trung Giang", "province_round", 82.0),  # past the district council: waits for the province's round
    ("Cà phê rang xay Cam Hiếu", "check_dossier", 66.0),
    ("Rượu mận Sa Pa", "recognition_decision", 74.0),  # then Lào Cai's People's Committee decides (DEMO_DECISIONS)
]
# Where a product waits that no single form names: at the province council's attendance.
PROVINCE_ROUND = "province_round"


# Council sessions held in the demo, through the session page's own use
# case (programme/councils.py), so their minutes exist: (product, who is
# present by username, members who have scored by then (None: all), who
# recuses with the reason, whether the chair confirms the minutes).
DEMO_SESSIONS = (
    ("Hồ tiêu Gio Linh", ("hd.qt-gl", "hd.qt-gl.chutich", "hd.qt-gl.phochutich", "hd.qt-gl.uyvien1",
                          "hd.qt-gl.uyvien2"), None,
     {"hd.qt-gl.uyvien2": "Là thành viên Hợp tác xã Nông nghiệp Gio Mỹ, chủ thể của sản phẩm"}, True),
    ("Gạo hữu cơ Gio Mỹ", ("hd.qt-gl", "hd.qt-gl.chutich", "hd.qt-gl.phochutich", "hd.qt-gl.uyvien1"),
     ("hd.qt-gl", "hd.qt-gl.phochutich"), {}, False),
)


# The demo's evaluation councils: (level, area code, council name, members as
# (username, full name or None for an account the sandbox already has,
# council role, department)). Quorum 3/4 with the chair, spread 10 (the defaults).
DEMO_COUNCILS = (
    ("province", "QT", "Hội đồng đánh giá, phân hạng sản phẩm OCOP tỉnh Quảng Trị", (
        ("hd.qt.chutich", "Hoàng Văn Bình", "chair", "Sở Nông nghiệp và Môi trường"),
        ("hd.qt.phochutich", "Lê Thị Thu Hà", "vice_chair", "Sở Công Thương"),
        ("hd.qt.uyvien1", "Nguyễn Đức Minh", "member", "Sở Y tế"),
        ("hd.qt.uyvien2", "Trần Thị Mai Phương", "member", "Sở Khoa học và Công nghệ"),
        ("hd.qt", None, "secretary", "Văn phòng Điều phối nông thôn mới tỉnh"))),
    ("district", "QT-GL", "Hội đồng đánh giá, phân hạng sản phẩm OCOP huyện Gio Linh", (
        ("hd.qt-gl.chutich", "Phan Văn Dũng", "chair", "Ủy ban nhân dân huyện Gio Linh"),
        ("hd.qt-gl.phochutich", "Võ Thị Hồng", "vice_chair", "Phòng Nông nghiệp và Môi trường huyện"),
        ("hd.qt-gl.uyvien1", "Đặng Quốc Huy", "member", "Phòng Kinh tế, Hạ tầng và Đô thị huyện"),
        ("hd.qt-gl.uyvien2", "Hồ Thị Lan", "member", "Phòng Y tế huyện"),
        ("hd.qt-gl", None, "secretary", "Văn phòng Điều phối nông thôn mới huyện"))),
)


def demo_present(engine: BpmnEngine) -> bool:
    """The demo's areas and people are in the database: its country-level
    area and its administrator's account (seed_world creates both)."""
    with engine.db.reading() as session:
        return bool(session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "VN"))
                    and session.scalar(select(User.id).where(User.username == "admin")))


def seed_areas_and_people(engine: BpmnEngine) -> bool:
    """The sandbox world (engine/sandbox.py) with the demo password on every
    account; False if already there."""
    return seed_world(engine.db, password_hash=_demo_hash())


@lru_cache(maxsize=1)
def _demo_hash() -> str:
    # One hash for the shared demo password: hashing is slow on purpose.
    return hash_password(DEMO_PASSWORD)


def seed_councils(engine: BpmnEngine) -> None:
    """The demo councils (DEMO_COUNCILS), kept by the administrator through
    the same use cases as the councils' pages, so the admin log has them.
    New accounts get the demo password."""
    with engine.db.transaction() as session:
        admin = load_actor(session, session.scalar(select(User.id).where(User.username == "admin")))
        areas = dict(session.execute(select(Jurisdiction.code, Jurisdiction.id)).all())
        members = {}
        for _level, _code, _name, seats in DEMO_COUNCILS:
            for username, full_name, _role, _department in seats:
                user = session.scalar(select(User).where(User.username == username))
                if user is None:
                    user = create_user(session, username, full_name, None)
                    user.password_hash = _demo_hash()
                members[username] = user.id
    for level, code, name, seats in DEMO_COUNCILS:
        council_id = create_council(engine, admin, level, areas[code], name)
        for username, _full_name, role, department in seats:
            add_member(engine, admin, council_id, members[username], department, role)


def run_outreach(engine: BpmnEngine, driver: Driver) -> None:
    """Step 1 in every locality that runs it: districts where they exist,
    communes directly under a province otherwise."""
    with engine.db.transaction() as session:
        units = session.scalars(select(Jurisdiction).order_by(Jurisdiction.id)).all()
        parents = {u.id: u for u in units}
        localities = [u.id for u in units if u.level == "district" or (
            u.level == "commune" and parents[u.parent_id].level == "province")]
        admin = load_actor(session, session.scalar(select(User.id).where(User.username == "admin")))
    for jurisdiction_id in localities:
        result = engine.start_outreach(jurisdiction_id, admin)
        driver.run_to_end(result.instance_id)


@dataclass(frozen=True)
class DemoSetup:
    """What `seed_demo` did."""

    seeded: bool               # areas, people and cycles created now (False: they were already there)
    diagrams: list[Deployed]   # the bundled diagrams, deployed again or for the first time


def seed_demo(engine: BpmnEngine, seed: int = 2026) -> DemoSetup:
    """Areas, people, diagrams, outreach, and products at different steps.
    When the areas and people are already there, only the bundled diagrams
    are deployed."""
    if not seed_areas_and_people(engine):
        return DemoSetup(False, deploy_bundled(engine))
    seed_councils(engine)
    diagrams = deploy_bundled(engine)
    driver = Driver(engine, SampleDecider(random.Random(seed), accept_rate=1.0))
    run_outreach(engine, driver)
    with engine.db.transaction() as session:
        products = {p.name: p for p in session.scalars(select(Product))}
        owners = {p.name: load_actor(session, p.producer.owner_user_id) for p in products.values()}
    instances = {}
    for name, stop_at, quality in DEMO_PROGRESS:
        result = engine.start_product(products[name].id, owners[name])
        instances[name] = result.instance_id
        if stop_at == PROVINCE_ROUND:
            _run_to_province_round(driver, result.instance_id, quality)
        else:
            driver.run_to_end(result.instance_id, quality=quality, stop_at_form=stop_at)
    qualities = {name: quality for name, _stop, quality in DEMO_PROGRESS}
    for product, present, scored, recused, confirmed in DEMO_SESSIONS:
        hold_session(engine, driver, instances[product], qualities[product], present, scored, recused, confirmed)
    issue_demo_decision(engine, instances["Rượu mận Sa Pa"], "ubnd.lc", "15/QĐ-UBND",
                        "Nguyễn Trọng Hài, Chủ tịch Ủy ban nhân dân tỉnh Lào Cai")
    seed_history(engine, driver, _demo_hash(), run_outreach)
    return DemoSetup(True, diagrams)


def _run_to_province_round(driver: Driver, instance_id: int, quality: float) -> None:
    """Through the district council to the province council's attendance,
    where the product waits for a session of its round."""
    for _ in range(200):
        tasks = driver.engine.ready_tasks(instance_id)
        if any(t.form_key == "council_attendance" and t.role == "province_council" for t in tasks):
            return
        if not tasks and not driver.wait_for_timer(instance_id):
            raise RuntimeError(f"instance {instance_id} stopped before the province's round")
        if tasks:
            driver.complete_next(instance_id, quality)
    raise RuntimeError(f"instance {instance_id} did not reach the province's round")


def issue_demo_decision(engine: BpmnEngine, instance_id: int, username: str, number: str, signer: str) -> None:
    """The People's Committee's numbered decision for one waiting product,
    through the decision page's use case (its certificate's validity starts)."""
    with engine.db.transaction() as session:
        task = session.scalar(select(InboxTask).where(InboxTask.instance_id == instance_id,
                                                      InboxTask.form_key == "recognition_decision"))
        actor = load_actor(session, session.scalar(select(User.id).where(User.username == username)))
        round_id = session.scalar(select(RoundEntry.round_id).where(
            RoundEntry.instance_id == instance_id, RoundEntry.left_at.is_(None)).limit(1))
    issue_decision(engine, actor, task.jurisdiction_id, AUTHORITY_OF_ROLE[task.role], number,
                   engine.clock().astimezone(VIETNAM).date(), signer, [instance_id], round_id)


def hold_session(engine: BpmnEngine, driver: Driver, instance_id: int, quality: float, present: tuple[str, ...],
                 scored: tuple[str, ...] | None, recused: dict[str, str], confirmed: bool) -> None:
    """A district council session for one waiting product, opened by its
    secretary on the session page's use case; members score (some recuse),
    and the chair confirms the minutes."""
    with engine.db.transaction() as session:
        ids = dict(session.execute(select(User.username, User.id)).all())
        attendance = session.scalar(select(InboxTask).where(InboxTask.instance_id == instance_id,
                                                            InboxTask.form_key == "council_attendance"))
        council_id = session.scalar(select(Council.id).where(Council.area_id == attendance.jurisdiction_id,
                                                            Council.active.is_(True)))
        secretary = load_actor(session, ids[present[0]])
    session_id = open_session(engine, secretary, council_id, [attendance.id], [ids[u] for u in present],
                              engine.clock().date(), "Phòng họp Ủy ban nhân dân huyện Gio Linh")
    reasons = {ids[username]: reason for username, reason in recused.items()}
    scorers = None if scored is None else {ids[username] for username in scored}
    for task in engine.ready_tasks(instance_id):
        if task.form_key != "council_sheet" or (scorers is not None and task.assignee_id not in scorers):
            continue
        if task.assignee_id in reasons:
            sheet = {"recused": True, "conflict_reason": reasons[task.assignee_id]}
        else:
            sheet = driver.decider.form("council_sheet", _criteria_set(engine, instance_id),
                                        engine.clock().date(), quality)
        engine.complete_task(task.id, sheet, driver.actor_for(task))
    if confirmed:
        with engine.db.transaction() as session:
            chair = load_actor(session, ids[present[1]])
        sign_off_session(engine, chair, session_id, "Thống nhất kết quả chấm điểm.")
        # Then it waits for the People's Committee's numbered decision.
        driver.run_to_end(instance_id, quality=quality, stop_at_form="recognition_decision")


def _criteria_set(engine: BpmnEngine, instance_id: int) -> str:
    with engine.db.transaction() as session:
        return session.get(ProcessInstance, instance_id).product.group_code
