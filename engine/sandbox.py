"""The world a diagram runs in before it is deployed, and that the demo
seeds too: Quảng Trị province on the seed-era shape (districts Gio Linh and
Cam Lộ with their communes) and Lào Cai on the two-tier shape (communes
directly under the province, as after July 2025), one officer for every
role and area, and producers with products of several criteria sets.

The dry run (engine/dryrun.py) runs every diagram in it, which is why it
belongs to the kernel; demo/seed.py adds the demo's passwords and moves its
products through the cycle.
"""
from __future__ import annotations

import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.criteria import sets_by_code
from storage.db import Database
from storage.models import Jurisdiction, Producer, Product, RoleAssignment, User

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


def seed_world(db: Database, password_hash: str | None = None) -> bool:
    """Create the areas, officers and producers; False if already there.
    Every account gets `password_hash` (None: nobody can sign in, as in a
    dry run)."""
    with db.transaction() as session:
        if session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "VN")):
            return False
        by_code: dict[str, Jurisdiction] = {}
        for code, name, level, parent in AREAS:
            unit = Jurisdiction(code=code, name=name, level=level,
                                parent_id=by_code[parent].id if parent else None)
            session.add(unit)
            session.flush()
            by_code[code] = unit
        for username, full_name, role, code in officers(by_code):
            user = User(username=username, full_name=full_name, password_hash=password_hash)
            user.roles.append(RoleAssignment(role=role, jurisdiction_id=by_code[code].id))
            session.add(user)
        for username, full_name, producer_name, kind, commune, products in PRODUCERS:
            user = User(username=username, full_name=full_name, password_hash=password_hash)
            session.add(user)
            session.flush()
            producer = Producer(name=producer_name, kind=kind, commune_id=by_code[commune].id,
                                owner_user_id=user.id)
            session.add(producer)
            session.flush()
            for product_name, group in products:
                session.add(Product(producer_id=producer.id, name=product_name, group_code=group))
    return True


COUNCIL_ROLES = ("district_council", "province_council", "central_council")


def add_council_members(db: Database, members: int = 4) -> None:
    """More people for every council role holder's area, so each council
    has the secretary seed_world made plus `members` (the first of them
    chairs: engine.driver.council_roster). For the dry run; the demo keeps
    its councils as data (demo/seed.py)."""
    with db.transaction() as session:
        holders = session.execute(select(RoleAssignment.role, RoleAssignment.jurisdiction_id, User.username)
                                  .join(User, User.id == RoleAssignment.user_id)
                                  .where(RoleAssignment.role.in_(COUNCIL_ROLES))).all()
        for role, area_id, username in holders:
            for n in range(1, members + 1):
                user = User(username=f"{username}.tv{n}", full_name=f"Thành viên hội đồng {n} ({username})")
                user.roles.append(RoleAssignment(role=role, jurisdiction_id=area_id))
                session.add(user)


def officers(by_code: dict[str, Jurisdiction]):
    """One officer per role and area; usernames say role and place."""
    yield "admin", "Quản trị hệ thống", "admin", "VN"
    yield "kiemtoan", "Kiểm toán viên Nguyễn Thị Lan", "auditor", "VN"
    yield "hd.trunguong", "Hội đồng Trung ương (thư ký)", "central_council", "VN"
    # Who signs recognition decisions (issue 16): the ministry, the People's Committees.
    yield "bo.nnmt", "Văn phòng Bộ Nông nghiệp và Môi trường", "ministry", "VN"
    for code, unit in by_code.items():
        slug = code.lower()
        if unit.level == "province":
            yield f"qlct.{slug}", f"Quản lý chương trình {unit.name}", "program_manager", code
            yield f"hd.{slug}", f"Hội đồng {unit.name} (thư ký)", "province_council", code
            yield f"tutvan.{slug}", f"Tổ tư vấn {unit.name}", "province_advisory", code
            yield f"ubnd.{slug}", f"Văn phòng Ủy ban nhân dân {unit.name}", "province_committee", code
            yield f"vpdp.{slug}", f"Văn phòng Điều phối OCOP {unit.name}", "province_office", code
        elif unit.level == "district":
            yield f"cb.{slug}", f"Cán bộ OCOP {unit.name}", "district_officer", code
            yield f"hd.{slug}", f"Hội đồng {unit.name} (thư ký)", "district_council", code
            yield f"ubnd.{slug}", f"Văn phòng Ủy ban nhân dân {unit.name}", "district_committee", code
        elif unit.level == "commune":
            yield f"cb.{slug}", f"Cán bộ OCOP {unit.name}", "commune_officer", code


def add_sample_products(session: Session, owner_id: int, commune_ids: list[int], count: int,
                        rng: random.Random, label: str) -> list[int]:
    """`count` producers with one product each, spread over the communes in
    turn, owned by one user (so producer tasks have a real actor)."""
    groups = sorted(sets_by_code())
    product_ids = []
    for number in range(count):
        producer = Producer(name=f"HTX {label} {number + 1}",
                            kind=rng.choice(("cooperative", "enterprise", "household", "farm")),
                            commune_id=commune_ids[number % len(commune_ids)], owner_user_id=owner_id)
        session.add(producer)
        session.flush()
        product = Product(producer_id=producer.id, name=f"Sản phẩm {label} {number + 1}",
                          group_code=rng.choice(groups))
        session.add(product)
        session.flush()
        product_ids.append(product.id)
    return product_ids
