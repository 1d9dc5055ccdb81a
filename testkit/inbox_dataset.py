"""The inbox benchmark's world, written straight into an empty database:
`build(url, products, officers)` and its clock's "now" (NOW). Used by
bench/inbox.py (100,000 products at full size) and tests/test_query_plans.py
(EXPLAIN on the same world at half size).

100,000 products in flight (one running cycle each, one or two ready tasks
per cycle) across 63 provinces, ~700 districts and ~7,000 communes, worked
by 1,000 officers at commune, district, province and central level. The
data is written with bulk Core inserts (not through the engine: the inbox
reads only rows, and 100,000 cycles through SpiffWorkflow would take
hours); every instance row shares one small JSON state.
"""
from __future__ import annotations

import json
import random
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from itertools import accumulate

from lxml import etree
from sqlalchemy import func, insert, select, text

from demo.seed import seed_areas_and_people
from engine.bpmn_engine import BpmnEngine
from engine.calendar import LOCAL_ZONE, add_working_days
from engine.clock import MovableClock
from engine.roles import role_for_lane
from programme.definitions import NATIONAL_DIAGRAM, deploy_bundled
from storage.db import Database
from storage.migrate import upgrade
from storage.models import (
    InboxTask,
    Jurisdiction,
    ProcessDefinition,
    ProcessInstance,
    Producer,
    Product,
    RoleAssignment,
    User,
)

# The benchmark's "now": a Monday morning in the spring round.
NOW = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
FULL_PRODUCTS = 100_000
OFFICERS = 1_000
PROVINCES, DISTRICTS_PER_PROVINCE, COMMUNES_PER_DISTRICT = 63, 11, 10

SYLLABLES = ("An", "Bình", "Hòa", "Phú", "Tân", "Thạnh", "Long", "Hưng", "Đông", "Tây", "Nam", "Bắc",
             "Vĩnh", "Phước", "Thuận", "Quang", "Minh", "Sơn", "Hải", "Trung", "Lộc", "Thành", "Nghĩa",
             "Đức", "Xuân", "Mỹ", "Kim", "Ngọc", "Hồng", "Lâm", "Châu", "Giang", "Thủy", "Cẩm", "Diên",
             "Triệu", "Hương", "Yên", "Hiệp", "Khánh")
GOODS = (("Hồ tiêu", "S10"), ("Gạo hữu cơ", "S03"), ("Mật ong rừng", "S04"), ("Cá khô", "S08"),
         ("Cà phê rang xay", "S13"), ("Rượu mận", "S15"), ("Tinh dầu tràm", "S20"), ("Chè xanh", "S12"),
         ("Nước mắm", "S07"), ("Miến dong", "S05"), ("Bánh tráng", "S06"), ("Nấm linh chi", "S18"),
         ("Mứt gừng", "S09"), ("Cam sành", "S01"), ("Thổ cẩm", "S22"), ("Nón lá", "S23"),
         ("Homestay", "S26"), ("Giò chả", "S02"), ("Dầu lạc", "S11"), ("Trà hoa vàng", "S14"))
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ")
GIVEN = ("Văn Tâm", "Thị Hoa", "Văn Bình", "Văn Hùng", "Văn Lộc", "Thị Lan", "Minh Đức", "Thị Mai",
         "Quang Huy", "Thị Thu", "Văn Nam", "Thị Hằng", "Hữu Phước", "Thanh Sơn")
KINDS = ("cooperative", "cooperative", "enterprise", "enterprise", "household", "household", "household",
         "cooperative_group", "farm")
# Where a product's cycle waits, with weights: the user task(s) ready there.
WAITING = (
    (("task_register_idea",), 14), (("task_receive_idea",), 8), (("task_review_idea",), 10),
    (("task_submit_plan",), 12), (("task_review_plan",), 8),
    (("task_submit_dossier", "task_support_record"), 14),  # step 4 runs both in parallel
    (("task_check_dossier",), 10), (("task_revise_dossier",), 3),
    (("task_score_district",), 12), (("task_score_province",), 7), (("task_score_central",), 2),
)
OUTREACH_TASKS = ("task_plan_outreach", "task_outreach_report")
STATE = json.dumps({"data": {}, "tasks": {}, "bench": "shared state of every generated instance"})
# Claimed share of officer tasks whose role has an officer in the area.
CLAIMED = 0.3


def _diagram_tasks() -> dict[str, dict]:
    """The national diagram's user tasks: lane's role, form and data keys,
    step, due days (calendar or working), name; read from the BPMN file."""
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
          "spiff": "http://spiffworkflow.org/bpmn/schema/1.0/core"}
    tree = etree.parse(str(NATIONAL_DIAGRAM[1]), etree.XMLParser(resolve_entities=False, no_network=True))
    lanes = {ref.text: lane.get("name") for lane in tree.iterfind(".//bpmn:lane", ns)
             for ref in lane.iterfind("bpmn:flowNodeRef", ns)}
    tasks = {}
    for node in tree.iterfind(".//bpmn:userTask", ns):
        props = {p.get("name"): p.get("value") for p in node.iterfind(".//spiff:property", ns)}
        role = role_for_lane(lanes[node.get("id")])
        tasks[node.get("id")] = {
            "element_id": node.get("id"), "name": node.get("name"), "lane": lanes[node.get("id")],
            "role": role.key, "level": role.level or "commune", "form_key": props["formKey"],
            "data_key": props["dataKey"], "step": int(props["step"]) if props.get("step") else None,
            "due_days": int(props.get("dueDays") or 0), "due_working_days": int(props.get("dueWorkingDays") or 0)}
    return tasks


def _place(rng: random.Random) -> str:
    return f"{rng.choice(SYLLABLES)} {rng.choice(SYLLABLES)}"


def _chunks(rows: list, size: int = 5_000):
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _insert(connection, table, rows: list[dict]) -> None:
    """Bulk rows: COPY on PostgreSQL (many times faster than INSERTs), one
    executemany per chunk on SQLite."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        for chunk in _chunks(rows):
            connection.execute(insert(table), chunk)
        return
    columns = list(rows[0])
    raw = connection.connection.driver_connection  # psycopg, inside this transaction
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([json.dumps(value) if isinstance(value, dict) else value
                            for value in (row[column] for column in columns)])


def _next_id(session, model) -> int:
    return (session.scalar(select(func.max(model.id))) or 0) + 1


def build(url: str, products: int = FULL_PRODUCTS, officers: int = OFFICERS, seed: int = 2026,
          analyze: bool | None = None) -> dict:
    """Write the benchmark's world into the (empty) database at `url`.
    Returns what was written and how long each part took (seconds)."""
    rng = random.Random(seed)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    db = Database(url)
    try:
        upgrade(db.sql_engine)
        engine = BpmnEngine(db, clock=MovableClock(NOW))
        # The demo's areas and people (Quảng Trị, Lào Cai, one officer per
        # role and area, six producers) and both diagrams, as `ocop init --demo`.
        seed_areas_and_people(engine)
        deploy_bundled(engine)
        timings["schema_and_demo_s"] = time.perf_counter() - started
        shape = _write_world(db, rng, products, officers)
        timings.update(shape.pop("timings"))
        postgres = db.sql_engine.dialect.name == "postgresql"
        if analyze is None:
            # PostgreSQL's autovacuum keeps statistics (and the visibility map
            # index-only scans need) up to date; SQLite has none unless someone
            # runs ANALYZE, which the application does not.
            analyze = postgres
        if analyze:
            mark = time.perf_counter()
            with db.sql_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE" if postgres else "ANALYZE"))
            timings["analyze_s"] = time.perf_counter() - mark
        timings["build_s"] = time.perf_counter() - started
        return {**shape, **{k: round(v, 2) for k, v in timings.items()}}
    finally:
        db.dispose()


def _write_world(db: Database, rng: random.Random, product_count: int, officer_count: int) -> dict:
    timings = {}
    mark = time.perf_counter()
    diagram_tasks = _diagram_tasks()
    with db.transaction() as session:
        vn = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "VN"))
        definitions = {name: session.scalar(select(ProcessDefinition.id).where(ProcessDefinition.name == name)
                                            .order_by(ProcessDefinition.version.desc()).limit(1))
                       for name in ("ocop_cycle", "ocop_cycle_two_tier")}
        password_hash = session.scalar(select(User.password_hash).where(User.username == "admin"))
        areas = {j.id: (j.level, j.parent_id) for j in session.scalars(select(Jurisdiction))}
        demo_officers = session.scalar(select(func.count(func.distinct(RoleAssignment.user_id))))
        lao_cai = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "LC"))
        next_area, next_user = _next_id(session, Jurisdiction), _next_id(session, User)
        next_producer, next_product = _next_id(session, Producer), _next_id(session, Product)
        next_instance = _next_id(session, ProcessInstance)
        demo_products = [(p.id, p.producer_id, p.name, p.group_code) for p in session.scalars(select(Product))]
        demo_producers = {p.id: p.commune_id for p in session.scalars(select(Producer))}
        holders: dict[tuple[str, int], list[int]] = defaultdict(list)
        for role, area, user_id in session.execute(select(RoleAssignment.role, RoleAssignment.jurisdiction_id,
                                                          RoleAssignment.user_id)):
            holders[(role, area)].append(user_id)

    # --- areas: the demo's two provinces plus generated ones, 63 in all ----
    area_rows = []
    generated_provinces = PROVINCES - sum(1 for level, _p in areas.values() if level == "province")
    for p in range(1, generated_provinces + 1):
        province = next_area
        next_area += 1
        area_rows.append({"id": province, "code": f"P{p:02d}", "name": f"Tỉnh {_place(rng)}",
                          "level": "province", "parent_id": vn})
        areas[province] = ("province", vn)
        for d in range(1, DISTRICTS_PER_PROVINCE + rng.randint(-3, 3) + 1):
            district = next_area
            next_area += 1
            area_rows.append({"id": district, "code": f"P{p:02d}-{d:02d}", "name": f"Huyện {_place(rng)}",
                              "level": "district", "parent_id": province})
            areas[district] = ("district", province)
            for c in range(1, COMMUNES_PER_DISTRICT + rng.randint(-3, 3) + 1):
                area_rows.append({"id": next_area, "code": f"P{p:02d}-{d:02d}-{c:02d}",
                                  "name": f"Xã {_place(rng)}", "level": "commune", "parent_id": district})
                areas[next_area] = ("commune", district)
                next_area += 1
    communes = [a for a, (level, _p) in areas.items() if level == "commune"]
    districts = [a for a, (level, _p) in areas.items() if level == "district"]
    provinces = [a for a, (level, _p) in areas.items() if level == "province"]

    def chain(commune: int) -> dict[str, int]:
        found = {"commune": commune}
        parent = areas[commune][1]
        while parent is not None:
            level, up = areas[parent]
            found[level] = parent
            parent = up
        return found

    # --- officers: 1,000 in all, demo ones included -------------------------
    people: list[tuple[str, str, list[tuple[str, int]]]] = []
    budget = officer_count - demo_officers
    generated_ids = {row["id"] for row in area_rows}
    demo_province_codes = {a for a in provinces if a not in generated_ids}
    for n in (2, 3):
        people.append((f"hd.trunguong{n}", f"Hội đồng Trung ương (thành viên {n})", [("central_council", vn)]))
    for province in provinces:
        if province in demo_province_codes:
            continue
        code = f"p{province}"
        people += [(f"qlct.{code}", f"Quản lý chương trình tỉnh {code}", [("program_manager", province)]),
                   (f"hd.{code}", f"Hội đồng tỉnh {code} (thư ký)", [("province_council", province)]),
                   (f"tutvan.{code}", f"Tổ tư vấn tỉnh {code}", [("province_advisory", province)])]
    left = budget - len(people)
    district_share = int(left * 0.4)
    chosen_districts = rng.sample([d for d in districts if not holders.get(("district_officer", d))], district_share)
    for i, district in enumerate(chosen_districts):
        roles = [("district_officer", district)] + ([("district_council", district)] if i % 3 == 0 else [])
        people.append((f"cb.huyen{district}", f"Cán bộ OCOP huyện {district} {_person(rng)}", roles))
    commune_share = budget - len(people)
    chosen_communes = rng.sample([c for c in communes if not holders.get(("commune_officer", c))], commune_share)
    for i, commune in enumerate(chosen_communes):
        roles = [("commune_officer", commune)]
        if i % 10 == 0:  # one in ten looks after a neighbouring commune too
            neighbours = [c for c in communes if areas[c][1] == areas[commune][1] and c != commune]
            if neighbours:
                roles.append(("commune_officer", rng.choice(neighbours)))
        people.append((f"cb.xa{commune}", f"Cán bộ OCOP xã {commune} {_person(rng)}", roles))
    user_rows, role_rows = [], []
    for username, full_name, roles in people:
        user_rows.append({"id": next_user, "username": username, "full_name": full_name,
                          "password_hash": password_hash, "is_active": True, "created_at": NOW - timedelta(days=400)})
        for role, area in roles:
            role_rows.append({"user_id": next_user, "role": role, "jurisdiction_id": area})
            holders[(role, area)].append(next_user)
        next_user += 1
    timings["areas_and_officers_s"] = time.perf_counter() - mark

    # --- producers and products: uneven over provinces ---------------------
    mark = time.perf_counter()
    weight = {p: rng.uniform(0.4, 2.0) for p in provinces}
    commune_weights = list(accumulate(weight[chain(c)["province"]] * rng.uniform(0.2, 1.8) for c in communes))
    producer_rows, product_rows = [], []
    product_list = list(demo_products)  # (id, producer id, name, group)
    producer_commune = dict(demo_producers)
    while len(product_list) < product_count:
        commune = rng.choices(communes, cum_weights=commune_weights)[0]
        kind = rng.choice(KINDS)
        good, group = rng.choice(GOODS)
        place = _place(rng)
        name = {"cooperative": f"HTX Nông nghiệp {place}", "cooperative_group": f"Tổ hợp tác {good} {place}",
                "enterprise": f"Công ty TNHH {good} {place}", "household": f"Hộ kinh doanh {_person(rng)}",
                "farm": f"Trang trại {good} {place}"}[kind]
        producer_rows.append({"id": next_producer, "name": name, "kind": kind, "commune_id": commune,
                              "owner_user_id": None, "created_at": NOW - timedelta(days=rng.randint(30, 900))})
        producer_commune[next_producer] = commune
        for _n in range(rng.choice((1, 1, 1, 2, 2, 3))):
            if len(product_list) >= product_count:
                break
            good, group = rng.choice(GOODS)
            product_name = f"{good} {place}"
            product_rows.append({"id": next_product, "producer_id": next_producer, "name": product_name,
                                 "group_code": group, "created_at": NOW - timedelta(days=rng.randint(1, 400))})
            product_list.append((next_product, next_producer, product_name, group))
            next_product += 1
        next_producer += 1

    # --- one running cycle per product, and its ready tasks ----------------
    instance_rows, task_rows = [], []
    choices, weights = zip(*WAITING)
    weights = list(accumulate(weights))

    def task_row(instance_id, spec, chain_, product_id, producer_id, created):
        due_at = None
        if spec["due_working_days"]:
            due_at = created + _working_days_offset(created, spec["due_working_days"])
        elif spec["due_days"]:
            due_at = created + timedelta(days=spec["due_days"])
        area = chain_.get(spec["level"])
        assignee = None
        if spec["role"] != "producer" and holders.get((spec["role"], area)) and rng.random() < CLAIMED:
            assignee = rng.choice(holders[(spec["role"], area)])
        escalated = (NOW - timedelta(days=1) if spec["element_id"] == "task_check_dossier"
                     and due_at is not None and due_at < NOW else None)
        return {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "instance_id": instance_id,
                "product_id": product_id, "producer_id": producer_id, "element_id": spec["element_id"],
                "name": spec["name"], "lane": spec["lane"], "role": spec["role"], "jurisdiction_id": area,
                "form_key": spec["form_key"], "data_key": spec["data_key"], "step": spec["step"],
                "assignee_id": assignee, "created_at": created, "due_at": due_at, "escalated_at": escalated}

    for product_id, producer_id, _name, _group in product_list:
        areas_ = chain(producer_commune[producer_id])
        areas_.setdefault("central", vn)
        waiting = rng.choices(choices, cum_weights=weights)[0]
        while "district" not in areas_ and any(diagram_tasks[e]["level"] == "district" for e in waiting):
            waiting = rng.choices(choices, cum_weights=weights)[0]  # two-tier: no district between commune and province
        started = NOW - timedelta(days=rng.randint(20, 200), minutes=rng.randint(0, 1440))
        created = min(NOW - timedelta(minutes=5), started + timedelta(days=rng.randint(0, 120),
                                                                         minutes=rng.randint(0, 1440)))
        two_tier = areas_.get("province") == lao_cai
        instance_rows.append({
            "id": next_instance, "definition_id": definitions["ocop_cycle_two_tier" if two_tier else "ocop_cycle"],
            "process_id": "ocop_product_cycle", "product_id": product_id, "jurisdiction_id": areas_["commune"],
            "areas": areas_, "year": 2026, "status": "running",
            "current_step": diagram_tasks[waiting[0]]["step"], "end_event": None, "stars": None, "state": STATE,
            "version": 2 + len(waiting), "audit_seq": 0, "audit_head": "0" * 64, "started_at": started,
            "updated_at": created, "finished_at": None})
        for element in waiting:
            task_rows.append(task_row(next_instance, diagram_tasks[element], areas_, product_id, producer_id,
                                      created))
        next_instance += 1
    # Step 1: each district's outreach campaign, some still waiting on its officer.
    for district in districts:
        if rng.random() < 0.5:
            continue
        areas_ = {"district": district, "province": areas[district][1], "central": vn}
        created = NOW - timedelta(days=rng.randint(1, 90))
        instance_rows.append({
            "id": next_instance, "definition_id": definitions["ocop_cycle"], "process_id": "ocop_outreach",
            "product_id": None, "jurisdiction_id": district, "areas": areas_, "year": 2026, "status": "running",
            "current_step": 1, "end_event": None, "stars": None, "state": STATE, "version": 2, "audit_seq": 0,
            "audit_head": "0" * 64, "started_at": created, "updated_at": created, "finished_at": None})
        task_rows.append(task_row(next_instance, diagram_tasks[rng.choice(OUTREACH_TASKS)], areas_, None, None,
                                  created))
        next_instance += 1
    timings["generate_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    with db.sql_engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # A durable commit, even on a test server running with
            # synchronous_commit=off: VACUUM marks pages all-visible (what
            # index-only scans need) only once the inserts' commit is flushed.
            connection.execute(text("SET LOCAL synchronous_commit = on"))
            if connection.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
                # The rows are consistent by construction: no foreign-key
                # trigger per row (five lookups for each task row).
                connection.execute(text("SET LOCAL session_replication_role = replica"))
        _insert(connection, Jurisdiction.__table__, area_rows)
        _insert(connection, User.__table__, user_rows)
        _insert(connection, RoleAssignment.__table__, role_rows)
        _insert(connection, Producer.__table__, producer_rows)
        _insert(connection, Product.__table__, product_rows)
        _insert(connection, ProcessInstance.__table__, instance_rows)
        _insert(connection, InboxTask.__table__, task_rows)
        if connection.dialect.name == "postgresql":
            for table in ("jurisdiction", "user_account", "producer", "product", "process_instance"):
                connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                        f"(SELECT max(id) FROM {table}))"))
    timings["insert_s"] = time.perf_counter() - mark
    overdue = sum(1 for row in task_rows if row["due_at"] is not None and row["due_at"] < NOW)
    return {
        "provinces": len(provinces), "districts": len(districts), "communes": len(communes),
        "officers": demo_officers + len(people), "producers": len(producer_commune), "products": len(product_list),
        "instances": len(instance_rows), "tasks": len(task_rows), "tasks_overdue": overdue,
        "tasks_claimed": sum(1 for row in task_rows if row["assignee_id"] is not None),
        "timings": timings,
    }


_OFFSETS: dict[tuple, timedelta] = {}


def _working_days_offset(start: datetime, days: int) -> timedelta:
    """add_working_days(start, days) - start, cached per local day."""
    key = (start.astimezone(LOCAL_ZONE).date(), days)
    if key not in _OFFSETS:
        _OFFSETS[key] = add_working_days(start, days) - start
    return _OFFSETS[key]


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(GIVEN)}"
