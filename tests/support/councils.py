"""A province council of five for the council tests (tests/test_councils.py,
tests/test_web_councils.py), and a small product diagram whose province
council lane has only the attendance, sheet and sign-off tasks, so sessions
are opened in a few steps; tests/test_council_sessions.py walks the shipped
cycle's whole session."""
from __future__ import annotations

from sqlalchemy import select

from engine import diagram
from engine.access import load_actor
from programme.accounts import create_user
from programme.councils import add_member, create_council
from storage.models import Jurisdiction, Product, User

BPMN, SPIFF = diagram.NS["bpmn"], diagram.NS["spiffworkflow"]
PROVINCE_LANE = "Hội đồng đánh giá cấp tỉnh"
ATTENDANCE_KEYS = ("session_id", "council_id", "council_name", "held_on", "place", "members", "present",
                   "quorum_fraction", "chair_required", "spread_limit", "chair_id", "secretary_id")
# (username, full name, council role, department); hd.qt (the demo's council account) is the secretary.
MEMBERS = (
    ("ct.hdqt", "Lê Văn Chủ", "chair", "Văn phòng Điều phối nông thôn mới tỉnh"),
    ("pct.hdqt", "Trần Thị Phó", "vice_chair", "Sở Nông nghiệp và Môi trường"),
    ("uv1.hdqt", "Nguyễn Văn Một", "member", "Sở Công Thương"),
    ("uv2.hdqt", "Phạm Thị Hai", "member", "Sở Y tế"),
    ("hd.qt", None, "secretary", "Sở Khoa học và Công nghệ"),
)


def _task(task_id: str, name: str, form_key: str, data_key: str) -> str:
    return (f'<bpmn:userTask id="{task_id}" name="{name}"><bpmn:extensionElements><spiffworkflow:properties>'
            f'<spiffworkflow:property name="formKey" value="{form_key}"/>'
            f'<spiffworkflow:property name="dataKey" value="{data_key}"/></spiffworkflow:properties>'
            "</bpmn:extensionElements></bpmn:userTask>")


def session_diagram(sheets: int = 0) -> bytes:
    """start -> province attendance -> `sheets` plain sheet tasks -> province
    sign-off -> end, in the province council's lane (the real diagram's
    sheets are one multi-instance task, one instance per present member);
    the outreach process the engine needs."""
    steps = ["task_attendance_province"] + [f"task_sheet_{n}" for n in range(sheets)] + ["task_sign_off_province"]
    flows = "".join(f'<bpmn:sequenceFlow id="f{n}" sourceRef="{a}" targetRef="{b}"/>'
                    for n, (a, b) in enumerate(zip(["start"] + steps, steps + ["end"])))
    return (f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions xmlns:bpmn="{BPMN}" '
            f'xmlns:spiffworkflow="{SPIFF}" id="d" targetNamespace="http://example.org/ocop">'
            f'<bpmn:process id="{diagram.PRODUCT_PROCESS}" isExecutable="true">'
            f'<bpmn:laneSet id="lanes"><bpmn:lane id="lane" name="{PROVINCE_LANE}">'
            + "".join(f"<bpmn:flowNodeRef>{step}</bpmn:flowNodeRef>" for step in steps)
            + "</bpmn:lane></bpmn:laneSet>"
            '<bpmn:startEvent id="start"/>'
            + _task("task_attendance_province", "Phiên họp hội đồng tỉnh", "council_attendance", "province_session")
            + "".join(_task(f"task_sheet_{n}", "Phiếu chấm", "council_sheet", f"sheet_{n}") for n in range(sheets))
            + _task("task_sign_off_province", "Xác nhận biên bản", "council_sign_off", "province_sign_off")
            + '<bpmn:endEvent id="end"/>' + flows + "</bpmn:process>"
            f'<bpmn:process id="{diagram.OUTREACH_PROCESS}" isExecutable="true"><bpmn:startEvent id="s2"/>'
            '<bpmn:endEvent id="e2"/><bpmn:sequenceFlow id="g" sourceRef="s2" targetRef="e2"/></bpmn:process>'
            "</bpmn:definitions>").encode()




def actor(engine, username: str):
    with engine.db.reading() as session:
        return load_actor(session, session.scalar(select(User.id).where(User.username == username)))


def area_id(engine, code: str) -> int:
    with engine.db.reading() as session:
        return session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == code))


def make_accounts(engine, names=MEMBERS) -> dict[str, int]:
    """The council's accounts (without roles, demo password); username -> user id."""
    ids = {}
    with engine.db.transaction() as session:
        # The demo password, as every demo account (copied: hashing is slow on purpose).
        demo_hash = session.scalar(select(User.password_hash).where(User.username == "admin"))
        for username, full_name, _role, _department in names:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                user = create_user(session, username, full_name, None)
                user.password_hash = demo_hash
            ids[username] = user.id
    return ids


def province_council(engine, by: str = "admin") -> tuple[int, dict[str, int]]:
    """Quảng Trị's council of five (quorum 3/4, chair required, spread 10):
    its id and username -> user id."""
    ids = make_accounts(engine)
    keeper = actor(engine, by)
    council_id = create_council(engine, keeper, "province", area_id(engine, "QT"), "Hội đồng OCOP tỉnh Quảng Trị")
    for username, _name, role, department in MEMBERS:
        add_member(engine, keeper, council_id, ids[username], department, role)
    return council_id, ids


def products_waiting(engine, count: int = 2, sheets: int = 0) -> list[int]:
    """Deploy the session diagram and start `count` Quảng Trị products on
    it: each waits at the province council's attendance. Instance ids."""
    engine.deploy(session_diagram(sheets), "ocop_cycle", "test", "council session")
    with engine.db.reading() as session:
        products = session.scalars(select(Product).where(Product.name.in_(
            ["Hồ tiêu Gio Linh", "Tinh dầu tràm Cam Lộ", "Mật ong rừng Gio Sơn"])).order_by(Product.id)).all()
        owners = [(p.id, load_actor(session, p.producer.owner_user_id)) for p in products]
    return [engine.start_product(product_id, owner).instance_id for product_id, owner in owners[:count]]
