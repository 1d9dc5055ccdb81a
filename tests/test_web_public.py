"""The public pages: overview of the programme and the promotion catalogue."""
import pytest

from testkit.cycle import Cycle, sheets
from web.app import create_app


@pytest.fixture
def client(world, db_url):
    return create_app(db_url).test_client()


def test_overview_and_catalogue_show_the_cycle(world, client):
    cycle = Cycle(world, "Hồ tiêu Gio Linh").start().through_dossier()
    cycle.do("score_product", sheets(80))
    cycle.do("score_product", sheets(82))
    Cycle(world, "Gạo hữu cơ Gio Mỹ").start()
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "Đăng ký ý tưởng sản phẩm" in page and "Được công nhận" in page
    catalogue = client.get("/catalogue?stars=4")
    text = catalogue.get_data(as_text=True)
    assert "Hồ tiêu Gio Linh" in text and "Tỉnh Quảng Trị" in text and "★★★★" in text
    assert "Hồ tiêu" not in client.get("/catalogue?stars=5").get_data(as_text=True)
    assert "frame-ancestors 'none'" in catalogue.headers["Content-Security-Policy"]


def test_catalogue_filters_by_province_and_group(world, client):
    for name, total in (("Hồ tiêu Gio Linh", 60), ("Rượu mận Sa Pa", 60)):
        cycle = Cycle(world, name).start().through_dossier()
        cycle.do("score_product", sheets(total))
    from sqlalchemy import select

    from storage.models import Jurisdiction
    with world.db.transaction() as session:
        lao_cai = session.scalar(select(Jurisdiction.id).where(Jurisdiction.code == "LC"))
    both = client.get("/catalogue").get_data(as_text=True)
    assert "Hồ tiêu Gio Linh" in both and "Rượu mận Sa Pa" in both
    only_lao_cai = client.get(f"/catalogue?province={lao_cai}").get_data(as_text=True)
    assert "Rượu mận Sa Pa" in only_lao_cai and "Hồ tiêu Gio Linh" not in only_lao_cai
    spices = client.get("/catalogue?group=S10").get_data(as_text=True)
    assert "Hồ tiêu Gio Linh" in spices and "Rượu mận Sa Pa" not in spices
    # The certificate is valid 36 months; dates in the reader's locale.
    assert "02/03/2029" in both
    assert "2 Mar 2029" in client.get("/catalogue?lang=en").get_data(as_text=True)
