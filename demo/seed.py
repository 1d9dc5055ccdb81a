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
from programme.accounts import hash_password
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
