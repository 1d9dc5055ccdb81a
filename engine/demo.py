"""Bundled diagrams and the demo data `ocop init --demo` seeds.

The demo is a small, realistic slice of the programme: Quảng Trị province
on the seed-era cycle (districts Gio Linh and Cam Lộ), and Lào Cai on its
own two-tier variant (communes directly under the province, as after
July 2025), with officers for every role and producers whose products stand
at different steps of the cycle.
"""
from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select

from engine.access import load_actor
from engine.accounts import hash_password
from engine.driver import Driver
from engine.engine import OcopEngine
from engine.samples import SampleDecider
from storage.models import Jurisdiction, Producer, Product, RoleAssignment, User

PROCESSES_DIR = Path(__file__).resolve().parents[1] / "processes"
NATIONAL_DIAGRAM = ("ocop_cycle", PROCESSES_DIR / "ocop_cycle.bpmn")
TWO_TIER_DIAGRAM = ("ocop_cycle_two_tier", PROCESSES_DIR / "variants" / "ocop_cycle_two_tier.bpmn")

# Every demo account signs in with this password (demo mode only).
DEMO_PASSWORD = "ocop-demo"

# code, name, level, parent code
AREAS = [
    ("VN", "Việt Nam", "central", None),
    ("QT", "Tỉnh Quảng Trị", "province", "VN"),
    ("QT-GL", "Huyện Gio Linh", "district", "QT"),
    ("QT-GL-GM", "Xã Gio Mỹ", "commune", "QT-GL"),
    ("QT-GL-GC", "Xã Gio Châu", "commune", "QT-GL"),
    ("QT-GL-GQ", "Xã Gio Quang", "commune", "QT-GL"),
    ("QT-GL-GS", "Xã Gio Sơn", "commune", "QT-GL"),
    ("QT-GL-TG", "Xã Trung Giang", "commune", "QT-GL"),
    ("QT-CL", "Huyện Cam Lộ", "district", "QT"),
    ("QT-CL-CT", "Xã Cam Thành", "commune", "QT-CL"),
    ("QT-CL-CH", "Xã Cam Hiếu", "commune", "QT-CL"),
    ("QT-CL-CTu", "Xã Cam Tuyền", "commune", "QT-CL"),
    ("QT-CL-CC", "Xã Cam Chính", "commune", "QT-CL"),
    ("LC", "Tỉnh Lào Cai", "province", "VN"),
    ("LC-SP", "Phường Sa Pa", "commune", "LC"),
    ("LC-BX", "Xã Bát Xát", "commune", "LC"),
    ("LC-MH", "Xã Mường Hum", "commune", "LC"),
]

# username, full name, producer name, kind, commune code, products [(name, criteria set)]
PRODUCERS = [
    ("htx.giomy", "Lê Văn Tâm", "HTX Nông nghiệp Gio Mỹ", "cooperative", "QT-GL-GM",
     [("Hồ tiêu Gio Linh", "S10"), ("Gạo hữu cơ Gio Mỹ", "S03")]),
    ("cty.tramcamlo", "Trần Thị Hoa", "Công ty TNHH Tinh dầu tràm Cam Lộ", "enterprise", "QT-CL-CT",
     [("Tinh dầu tràm Cam Lộ", "S20")]),
    ("tht.matonggioson", "Hồ Văn Bình", "Tổ hợp tác Mật ong Gio Sơn", "cooperative_group", "QT-GL-GS",
     [("Mật ong rừng Gio Sơn", "S04")]),
    ("hkd.nguyenvanhung", "Nguyễn Văn Hùng", "Hộ kinh doanh Nguyễn Văn Hùng", "household", "QT-GL-TG",
     [("Cá khô Trung Giang", "S08")]),
    ("trangtrai.camhieu", "Phan Văn Lộc", "Trang trại cà phê Cam Hiếu", "farm", "QT-CL-CH",
     [("Cà phê rang xay Cam Hiếu", "S13")]),
    ("htx.ruoumansapa", "Giàng A Lử", "HTX Rượu mận Sa Pa", "cooperative", "LC-SP",
     [("Rượu mận Sa Pa", "S15")]),
]

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


def deploy_bundled(engine: OcopEngine, author: str = "ocop init") -> None:
    """Deploy the national diagram; the two-tier variant is deployed too and
    activated for Lào Cai when that province exists."""
    name, path = NATIONAL_DIAGRAM
    engine.deploy(path.read_bytes(), name, author, "Bundled seed-era cycle (rule set 148)")
    with engine.db.transaction() as session:
        lao_cai = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "LC"))
    name, path = TWO_TIER_DIAGRAM
    engine.deploy(path.read_bytes(), name, author, "Two-tier cycle after July 2025",
                  province_id=lao_cai, activate=lao_cai is not None)


def seed_areas_and_people(engine: OcopEngine) -> bool:
    """Create the demo areas, officers and producers; False if already there."""
    with engine.db.transaction() as session:
        if session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "VN")):
            return False
        by_code: dict[str, Jurisdiction] = {}
        for code, name, level, parent in AREAS:
            unit = Jurisdiction(code=code, name=name, level=level,
                                parent_id=by_code[parent].id if parent else None)
            session.add(unit)
            session.flush()
            by_code[code] = unit
        for username, full_name, role, code in _officers(by_code):
            user = User(username=username, full_name=full_name, password_hash=_demo_hash())
            user.roles.append(RoleAssignment(role=role, jurisdiction_id=by_code[code].id))
            session.add(user)
        for username, full_name, producer_name, kind, commune, products in PRODUCERS:
            user = User(username=username, full_name=full_name, password_hash=_demo_hash())
            session.add(user)
            session.flush()
            producer = Producer(name=producer_name, kind=kind, commune_id=by_code[commune].id,
                                owner_user_id=user.id)
            session.add(producer)
            session.flush()
            for product_name, group in products:
                session.add(Product(producer_id=producer.id, name=product_name, group_code=group))
    return True


@lru_cache(maxsize=1)
def _demo_hash() -> str:
    # One hash for the shared demo password: hashing is slow on purpose.
    return hash_password(DEMO_PASSWORD)


def _officers(by_code: dict[str, Jurisdiction]):
    """One officer per role and area; usernames say role and place."""
    yield "admin", "Quản trị hệ thống", "admin", "VN"
    yield "kiemtoan", "Kiểm toán viên Nguyễn Thị Lan", "auditor", "VN"
    yield "hd.trunguong", "Hội đồng Trung ương (thư ký)", "central_council", "VN"
    for code, unit in by_code.items():
        slug = code.lower()
        if unit.level == "province":
            yield f"qlct.{slug}", f"Quản lý chương trình {unit.name}", "program_manager", code
            yield f"hd.{slug}", f"Hội đồng {unit.name} (thư ký)", "province_council", code
            yield f"tutvan.{slug}", f"Tổ tư vấn {unit.name}", "province_advisory", code
        elif unit.level == "district":
            yield f"cb.{slug}", f"Cán bộ OCOP {unit.name}", "district_officer", code
            yield f"hd.{slug}", f"Hội đồng {unit.name} (thư ký)", "district_council", code
        elif unit.level == "commune":
            yield f"cb.{slug}", f"Cán bộ OCOP {unit.name}", "commune_officer", code


def run_outreach(engine: OcopEngine, driver: Driver) -> None:
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


def seed_demo(engine: OcopEngine, seed: int = 2026) -> None:
    """Areas, people, diagrams, outreach, and products at different steps."""
    if not seed_areas_and_people(engine):
        deploy_bundled(engine)
        return
    deploy_bundled(engine)
    driver = Driver(engine, SampleDecider(random.Random(seed), accept_rate=1.0))
    run_outreach(engine, driver)
    with engine.db.transaction() as session:
        products = {p.name: p for p in session.scalars(select(Product))}
        owners = {p.name: load_actor(session, p.producer.owner_user_id) for p in products.values()}
    for name, stop_at, quality in DEMO_PROGRESS:
        result = engine.start_product(products[name].id, owners[name])
        driver.run_to_end(result.instance_id, quality=quality, stop_at_form=stop_at)
