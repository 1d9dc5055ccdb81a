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

from engine.access import load_actor
from engine.bpmn_engine import BpmnEngine
from engine.driver import Driver
from engine.samples import SampleDecider
from engine.sandbox import seed_world
from programme.accounts import create_user, hash_password
from programme.councils import add_member, create_council
from programme.definitions import Deployed, deploy_bundled
from storage.models import Jurisdiction, Product, User

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
    ("Hồ tiêu Gio Linh", None, 66.0),       # 3 stars: recognised by the district, in the catalogue
    ("Gạo hữu cơ Gio Mỹ", "review_idea", 60.0),
    ("Tinh dầu tràm Cam Lộ", "score_product", 78.0),
    ("Mật ong rừng Gio Sơn", "review_plan", 70.0),
    ("Cá khô Trung Giang", None, 92.0),     # proposed for 4+ stars: waits for the provincial round
    ("Cà phê rang xay Cam Hiếu", "check_dossier", 66.0),
    ("Rượu mận Sa Pa", None, 74.0),
]


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
    for name, stop_at, quality in DEMO_PROGRESS:
        result = engine.start_product(products[name].id, owners[name])
        driver.run_to_end(result.instance_id, quality=quality, stop_at_form=stop_at)
    return DemoSetup(True, diagrams)
