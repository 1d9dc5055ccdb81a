"""The OCOP report's page and downloads (/reports/) on SQLite and
PostgreSQL: the figures on screen, in the CSV and in the XLSX are the
database's own counts (SQL written in the test); the XLSX has one sheet
per table, bold headers and set column widths; who reads which province;
an empty database; bad query values; a fixed number of statements."""
from __future__ import annotations

import csv
import io
import re
import zipfile
from xml.etree import ElementTree

import pytest
from sqlalchemy import event, select

from storage.models import Product
from testkit.web_login import login
from tests.support.report_certificates import make_certificate
from tests.support.inbox_world import add_officer
from tests.support.report_world import ON, build, counted, year_of

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


@pytest.fixture
def provinces(world):
    found = build(world)
    add_officer(world, "ubnd.qt", "province_committee", "QT")
    add_officer(world, "bo.nnmt", "ministry", "VN")
    return found


def csv_tables(body: bytes) -> dict[str, list[list[str]]]:
    """The CSV's tables by title: header and rows."""
    assert body.startswith("\ufeff".encode("utf-8"))
    tables, current = {}, None
    for row in csv.reader(io.StringIO(body.decode("utf-8-sig"))):
        if not row:
            current = None
        elif current is None:
            current = tables.setdefault(row[0], [])
        else:
            current.append(row)
    return tables


def xlsx_sheets(body: bytes) -> dict[str, list[list]]:
    """Sheet name -> rows of cell values (strings or numbers), read from the XML."""
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        shared = [("".join(node.itertext())) for node in
                  ElementTree.fromstring(archive.read("xl/sharedStrings.xml")).findall("m:si", NS)] \
            if "xl/sharedStrings.xml" in archive.namelist() else []
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        relations = {rel.get("Id"): rel.get("Target") for rel in
                     ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))}
        styles = ElementTree.fromstring(archive.read("xl/styles.xml"))
        fonts = styles.findall("m:fonts/m:font", NS)
        bold_styles = {number for number, xf in enumerate(styles.findall("m:cellXfs/m:xf", NS))
                       if fonts[int(xf.get("fontId", 0))].find("m:b", NS) is not None}
        sheets = {}
        for sheet in workbook.findall("m:sheets/m:sheet", NS):
            root = ElementTree.fromstring(archive.read("xl/" + relations[sheet.get(REL)]))
            assert root.findall("m:cols/m:col", NS), sheet.get("name")          # widths set
            rows = []
            for row in root.findall("m:sheetData/m:row", NS):
                cells = []
                for cell in row.findall("m:c", NS):
                    value = cell.findtext("m:v", "", NS)
                    if row.get("r") == "1":
                        assert int(cell.get("s", 0)) in bold_styles, (sheet.get("name"), value)  # bold header
                    cells.append(shared[int(value)] if cell.get("t") == "s" else float(value))
                rows.append(cells)
            sheets[sheet.get("name")] = rows
    return sheets


def number(text) -> int:
    return int(float(text))


def test_the_page_and_downloads_show_the_databases_counts(world, client, provinces):
    login(client, "admin")
    page = client.get("/reports/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    stars = counted(world, "SELECT c.stars, count(*) FROM certificate c WHERE {valid}{scope} GROUP BY 1")
    total = sum(stars.values())
    assert f"Giấy chứng nhận còn hiệu lực ngày 02/03/2026: {total}" in html
    for chart in ("stars-chart", "industries-chart", "kinds-chart", "movements-chart", "expiring-chart",
                  "provinces-chart"):
        assert f'id="{chart}"' in html
    assert 'data-nav="reports"' in html and "http://" not in html.split("<body>")[1].split("</header>")[1] \
        .replace("http://www.w3.org", "")

    response = client.get("/reports/bao-cao.csv")
    assert response.headers["Content-Disposition"] == 'attachment; filename="bao-cao-ocop-toan-quoc-2026-03-02.csv"'
    tables = csv_tables(response.data)
    star_table = tables["Giấy chứng nhận còn hiệu lực ngày 02/03/2026 theo hạng sao"]
    assert star_table[0] == ["Hạng", "Số giấy chứng nhận"]
    assert {row[0]: number(row[1]) for row in star_table[1:4]} == {f"{n} sao": stars.get(n, 0) for n in (3, 4, 5)}
    assert star_table[4] == ["Tổng cộng", str(total)]
    kinds = counted(world, "SELECT c.producer_kind, count(*) FROM certificate c WHERE {valid}{scope} GROUP BY 1")
    kind_table = tables["Giấy chứng nhận còn hiệu lực theo loại hình chủ thể"]
    assert {row[0]: number(row[1]) for row in kind_table[1:-1] if number(row[1])} == {
        {"cooperative": "Hợp tác xã", "cooperative_group": "Tổ hợp tác", "enterprise": "Doanh nghiệp",
         "household": "Hộ sản xuất có đăng ký kinh doanh", "farm": "Trang trại"}[kind]: count
        for kind, count in kinds.items()}
    by_province = counted(world, "SELECT j.code, count(*) FROM certificate c JOIN jurisdiction j "
                                 "ON j.id = c.province_id WHERE {valid}{scope} GROUP BY 1")
    province_table = tables["Theo tỉnh: giấy chứng nhận còn hiệu lực và biến động năm 2026"]
    assert province_table[0][:6] == ["Mã tỉnh", "Tỉnh", "3 sao", "4 sao", "5 sao", "Tổng số còn hiệu lực"]
    assert {row[0]: number(row[5]) for row in province_table[1:]} == {
        code: by_province.get(code, 0) for code in ("HG", "LC", "QT")}
    expiring = counted(world, "SELECT c.number, count(*) FROM certificate c WHERE {valid} "
                              "AND c.valid_until <= :until{scope} GROUP BY 1", until=ON.replace(month=9))
    listed = tables["Danh sách giấy chứng nhận hết hiệu lực đến ngày 02/09/2026"]
    assert listed[0] == ["Số giấy chứng nhận", "Sản phẩm", "Chủ thể", "Xã", "Hạng sao", "Hiệu lực đến"]
    assert {row[0] for row in listed[1:]} == set(expiring) and expiring
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4}", row[5]) for row in listed[1:])

    issued = counted(world, f"SELECT {year_of(world, 'c.issued_on')}, c.kind, count(*) FROM certificate c "
                            "WHERE c.issued_on <= :on{scope} GROUP BY 1, 2")
    years = tables["Biến động theo năm (đến ngày 02/03/2026)"]
    assert years[0] == ["Năm", "Công nhận mới", "Công nhận lại", "Nâng hạng", "Thu hồi", "Hết hiệu lực"]
    assert {(number(row[0]), kind): number(row[1 + column]) for row in years[1:]
            for column, kind in enumerate(("new", "re_recognised", "upgraded")) if number(row[1 + column])} == issued

    response = client.get("/reports/bao-cao.xlsx")
    assert response.headers["Content-Disposition"] == \
        'attachment; filename="bao-cao-ocop-toan-quoc-2026-03-02.xlsx"'
    sheets = xlsx_sheets(response.data)
    assert list(sheets) == ["Hạng sao", "Ngành sản phẩm", "Bộ tiêu chí", "Loại hình chủ thể", "Theo năm",
                            "Theo đợt", "Sắp hết hiệu lực, theo tháng", "Sắp hết hiệu lực", "Theo tỉnh"]
    # The same figures as the CSV, table by table (dates are numbers in the XLSX).
    for (title, rows), (name, sheet) in zip(tables.items(), sheets.items()):
        assert len(rows) == len(sheet), name
        for csv_row, sheet_row in zip(rows, sheet):
            for text, value in zip(csv_row, sheet_row):
                if isinstance(value, float) and not re.fullmatch(r"\d\d/\d\d/\d{4}", text):
                    assert number(text) == value, (name, csv_row, sheet_row)
                elif isinstance(value, str):
                    assert text.lstrip("'") == value.lstrip("'"), (name, csv_row, sheet_row)


def test_one_province_for_its_manager_and_its_peoples_committee(world, app, provinces):
    lc = provinces["LC"]
    for username in ("qlct.qt", "ubnd.qt"):
        client = app.test_client()
        login(client, username)
        html = client.get("/reports/").get_data(as_text=True)
        assert 'data-nav="reports"' in html and 'id="provinces-chart"' not in html
        assert "Tỉnh Lào Cai" not in html
        csv_body = client.get("/reports/bao-cao.csv")
        assert 'filename="bao-cao-ocop-qt-2026-03-02.csv"' in csv_body.headers["Content-Disposition"]
        own = counted(world, "SELECT count(*), count(*) FROM certificate c WHERE {valid}{scope}",
                      provinces=[provinces["QT"]])
        stars = csv_tables(csv_body.data)["Giấy chứng nhận còn hiệu lực ngày 02/03/2026 theo hạng sao"]
        assert stars[-1] == ["Tổng cộng", str(next(iter(own.values())))]
        for path in ("/reports/", "/reports/bao-cao.csv", "/reports/bao-cao.xlsx"):
            assert client.get(path, query_string={"province": lc}).status_code == 403, (username, path)
            assert client.get(path, query_string={"province": provinces["QT"]}).status_code == 200


def test_who_may_read_the_report(world, app, provinces):
    lc = provinces["LC"]
    for username in ("admin", "kiemtoan", "bo.nnmt"):
        client = app.test_client()
        login(client, username)
        for path in ("/reports/", "/reports/bao-cao.csv", "/reports/bao-cao.xlsx"):
            assert client.get(path, query_string={"province": lc}).status_code == 200, (username, path)
        html = client.get("/reports/", query_string={"province": lc}).get_data(as_text=True)
        assert 'data-nav="reports"' in html and "Tỉnh Lào Cai" in html
    for username in ("cb.qt-gl", "htx.giomy", "hd.qt", "tutvan.qt", "cb.qt-gl-gm"):
        client = app.test_client()
        login(client, username)
        assert 'data-nav="reports"' not in client.get("/inbox/" if username != "htx.giomy" else "/portal/") \
            .get_data(as_text=True)
        for path in ("/reports/", "/reports/bao-cao.csv", "/reports/bao-cao.xlsx"):
            assert client.get(path).status_code == 403, (username, path)
    anonymous = app.test_client()
    assert anonymous.get("/reports/").status_code == 302
    assert anonymous.get("/reports/bao-cao.csv").status_code == 302


def test_an_empty_database_renders(world, client):
    login(client, "admin")
    html = client.get("/reports/").get_data(as_text=True)
    assert "Giấy chứng nhận còn hiệu lực ngày 02/03/2026: 0" in html and "Chưa có số liệu" in html
    assert client.get("/reports/bao-cao.csv").status_code == 200
    assert "Theo tỉnh" in xlsx_sheets(client.get("/reports/bao-cao.xlsx").data)


def test_bad_query_values_are_refused(world, client):
    login(client, "admin")
    for query in ("date=2026-02-30", "date=02/03/2026", "date=1999-12-31", "date=x", "year=1999", "year=abc",
                  "province=-1"):
        response = client.get(f"/reports/?{query}")
        assert response.status_code == 400, query
    text = client.get("/reports/?date=x").get_data(as_text=True)
    assert "Tham số “date” trong địa chỉ phải là một ngày" in text
    assert "The parameter “date” in the address must be a date" in text
    assert client.get("/reports/?date=&year=&province=").status_code == 200
    assert client.get("/reports/?province=999999").status_code == 404       # no such province
    assert client.get("/reports/bao-cao.csv?province=1").status_code == 404  # Việt Nam, not a province
    assert client.get("/reports/?date=2025-06-30&year=2025").status_code == 200


def test_english(world, client, provinces):
    login(client, "admin")
    html = client.get("/reports/?lang=en").get_data(as_text=True)
    assert "OCOP report" in html and "Báo cáo OCOP" not in html
    tables = csv_tables(client.get("/reports/bao-cao.csv").data)
    assert any(title.startswith("Valid certificates") for title in tables)


def test_the_page_reads_a_fixed_number_of_statements(world, app, provinces):
    client = app.test_client()
    login(client, "admin")
    statements = []
    database = app.extensions["ocop_engine"].db.sql_engine

    def count(*args):
        statements.append(args[2])

    def per_request(path):
        assert client.get(path).status_code == 200  # warm
        statements.clear()
        event.listen(database, "before_cursor_execute", count)
        try:
            assert client.get(path).status_code == 200
        finally:
            event.remove(database, "before_cursor_execute", count)
        return len(statements)

    before = {path: per_request(path) for path in ("/reports/", "/reports/bao-cao.csv", "/reports/bao-cao.xlsx")}
    with world.db.transaction() as session:
        product = session.scalar(select(Product.id).limit(1))
        for n in range(60):
            make_certificate(session, product, 3 + n % 3, ON.replace(year=2024, month=1 + n % 12))
    after = {path: per_request(path) for path in before}
    assert after == before and max(before.values()) <= 16, before


def test_readable_on_a_phone(world, browser, live_server, provinces):
    """360 px wide: nothing wider than the screen (tables stack, charts scale)."""
    import os

    from tests.support.browser import ARTIFACTS
    from tests.support.web_helpers import sign_in_browser
    context = browser.new_context(base_url=live_server, locale="vi-VN", viewport={"width": 360, "height": 800})
    page = context.new_page()
    try:
        sign_in_browser(page, "admin")
        page.goto("/reports/")
        assert page.locator("h1").inner_text() == "Báo cáo OCOP"
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        for chart in page.locator("svg.chart").all():
            assert chart.bounding_box()["width"] <= 360
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, "report_360.png"), full_page=True)
    finally:
        context.close()
