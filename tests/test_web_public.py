"""The public pages: overview of the programme and the promotion catalogue."""
import pytest

from tests.cycle import Cycle, sheets
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
