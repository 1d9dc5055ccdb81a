"""An upgrade (nâng hạng, `ocop_upgrade`, issue 16) on SQLite and
PostgreSQL: the producer asks, files what changed, the commune checks, the
province council scores in a session, the People's Committee decides; a
higher rank replaces the certificate, else the product keeps its rank.
Refusals: no valid certificate, someone else's product, 5 stars, an
upgrade already running (also two requests at once), a re-evaluation under
way.
"""
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from audit import verification
from engine.errors import FormInvalid, NotAllowed
from programme.certificates import (
    CertificateRefused,
    UnknownCertificate,
    local_today,
    reevaluation_window,
    start_upgrade,
)
from programme.councils import open_session, waiting_products
from storage.criteria import scorable_items
from storage.recognition_models import CERT_EXPIRED, CERT_REPLACED, CERT_VALID, Certificate
from tests.support.certificate_life import Life
from tests.support.certificate_life import actor_named as actor
from tests.support.councils import MEMBERS, province_council
from tests.support.inbox_world import PEPPER, add_officer, user_id
from tests.support.threads import run_at_once

PRODUCER = "htx.giomy"


@pytest.fixture
def province(world):
    council_id, _ids = province_council(world)
    add_officer(world, "ubnd.qt", "province_committee", "QT")
    return council_id


def certified(world, stars: int = 3, days_left: int = 900, **extra) -> Life:
    today = local_today(world)
    return Life(world, PEPPER, stars=stars, issued_on=today - timedelta(days=1095 - days_left),
                valid_until=today + timedelta(days=days_left), **extra)


def dossier(life: Life) -> dict:
    criterion = scorable_items(life.group)[0]["id"]
    return {"summary": "Đầu tư dây chuyền đóng gói mới, mở rộng thị trường xuất khẩu", "criteria_touched": [criterion],
            "changes": "Bao bì mới đạt chuẩn xuất khẩu; kiểm nghiệm đầy đủ chỉ tiêu", "evidence": ["lab_test"]}


def to_council(world, life: Life, council_id: int) -> int:
    """The producer asks and files, the commune forwards, the council meets. The instance."""
    instance_id = start_upgrade(world, actor(world, PRODUCER), life.certificate_id)
    assert life.forms(instance_id) == ["upgrade_dossier"]  # no idea, no plan
    life.do("upgrade_dossier", dossier(life), instance_id=instance_id)
    life.do("upgrade_check", {"complete": True}, instance_id=instance_id)
    secretary = actor(world, "hd.qt")
    with world.db.reading() as session:
        waiting = [w for w in waiting_products(session, secretary, council_id) if w.instance_id == instance_id]
    assert waiting, "the upgrade waits for the province council's session"
    present = [user_id(world, username) for username, *_ in MEMBERS]
    open_session(world, secretary, council_id, [waiting[0].task_id], present, local_today(world), "Sở NN&MT")
    return instance_id


def test_a_three_star_product_upgraded_to_four(world, province):
    life = certified(world)
    life.start_validity(actor(world, "ubnd.qt"))
    old_validity = life.instance_id
    upgrade = to_council(world, life, province)
    life.opinions(78, instance_id=upgrade)
    life.do("council_sign_off", {"confirmed": True}, instance_id=upgrade)
    assert life.task("recognition_decision", upgrade).role == "province_committee"
    life.decide(4, actor(world, "ubnd.qt"), instance_id=upgrade)
    instance = life.instance(upgrade)
    assert (instance.status, instance.end_event) == ("completed", "end_upgraded")
    assert life.certificate().status == CERT_REPLACED
    with world.db.reading() as session:
        new = session.scalar(select(Certificate).where(Certificate.previous_id == life.certificate_id))
    assert (new.kind, new.stars, new.status) == ("upgraded", 4, CERT_VALID)
    assert ("upgraded", "producer") in life.notices(upgrade)
    assert verification.verify(world, [upgrade]).ok
    # The old certificate's validity instance ends at its next timer, telling nobody.
    reminder = datetime.fromisoformat(reevaluation_window(life.certificate().valid_until).timers()["reminder_at"])
    life.at(reminder + timedelta(minutes=1))
    validity = life.instance(old_validity)
    assert (validity.status, validity.end_event) == ("completed", "end_no_longer_valid")
    assert life.notices(old_validity) == []


def test_no_higher_rank_keeps_the_current_one(world, province):
    life = certified(world)
    upgrade = to_council(world, life, province)
    life.opinions(62, instance_id=upgrade)
    life.do("council_sign_off", {"confirmed": True}, instance_id=upgrade)
    instance = life.instance(upgrade)
    assert (instance.status, instance.end_event) == ("completed", "end_upgrade_kept")
    assert ("upgrade_kept", "producer") in life.notices(upgrade)
    assert life.certificate().status == CERT_VALID


def test_refusals_write_nothing(world, province):
    producer = actor(world, PRODUCER)
    with pytest.raises(UnknownCertificate):
        start_upgrade(world, producer, 987654)
    life = certified(world)
    with pytest.raises(NotAllowed):  # the commune officer is not the producer
        start_upgrade(world, actor(world, "cb.qt-gl-gm"), life.certificate_id)
    with pytest.raises(NotAllowed):  # another producer
        start_upgrade(world, actor(world, "admin"), life.certificate_id)
    with world.db.transaction() as session:
        session.execute(update(Certificate).where(Certificate.id == life.certificate_id).values(status=CERT_EXPIRED))
    with pytest.raises(CertificateRefused, match="không còn hiệu lực"):
        start_upgrade(world, producer, life.certificate_id)
    five = certified(world, stars=5)
    with pytest.raises(CertificateRefused, match="5 sao"):
        start_upgrade(world, producer, five.certificate_id)
    running = certified(world)
    start_upgrade(world, producer, running.certificate_id)
    with pytest.raises(CertificateRefused, match="đang có một đề nghị nâng hạng"):
        start_upgrade(world, producer, running.certificate_id)


def test_a_malformed_dossier_is_refused(world, province):
    life = certified(world)
    upgrade = start_upgrade(world, actor(world, PRODUCER), life.certificate_id)
    with pytest.raises(FormInvalid):
        life.do("upgrade_dossier", {**dossier(life), "criteria_touched": ["Z.9.9"]}, instance_id=upgrade)
    with pytest.raises(FormInvalid):
        life.do("upgrade_dossier", {"summary": "ngắn", "criteria_touched": [], "changes": "x"}, instance_id=upgrade)
    assert life.forms(upgrade) == ["upgrade_dossier"]


def test_two_requests_at_once_start_one_upgrade(world, province):
    life = certified(world)
    producer = actor(world, PRODUCER)
    results, errors = run_at_once(lambda: start_upgrade(world, producer, life.certificate_id), 2)
    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], CertificateRefused)


def test_no_upgrade_while_a_re_evaluation_is_under_way(world, province):
    life = certified(world, days_left=150)
    life.start_validity(actor(world, "ubnd.qt"))
    life.fire()
    life.do("reevaluation_dossier", {"markets": "Thêm 3 siêu thị"})
    with pytest.raises(CertificateRefused, match="đánh giá, phân hạng lại"):
        start_upgrade(world, actor(world, PRODUCER), life.certificate_id)
