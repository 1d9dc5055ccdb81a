"""Error pages (web/errors.py): both languages, Vietnamese first, the same
security headers as every page; the JSON API keeps its own error format."""
import pytest

from testkit.web_login import login

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def page_text(response) -> str:
    assert response.content_type.startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    return response.get_data(as_text=True)


def test_a_missing_page_answers_in_both_languages(client):
    text = page_text(client.get("/khong-co-trang-nay"))
    assert text.index("Không tìm thấy") < text.index("Not found")


def test_a_wrong_method_and_an_expired_form_are_explained(client):
    response = client.put("/login")
    assert response.status_code == 405 and "Method not allowed" in page_text(response)
    response = client.post("/login", data={"username": "admin", "password": "x"})  # no CSRF token
    assert response.status_code == 400
    text = page_text(response)
    assert "Biểu mẫu đã hết hạn" in text and "Form expired" in text


def test_a_refused_page_explains_itself(client):
    login(client, "htx.giomy")
    response = client.get("/admin/users")
    assert response.status_code == 403
    assert "Không có quyền" in page_text(response)


def test_the_api_keeps_its_json_errors(client):
    response = client.get("/api/v1/khong-co")
    assert response.status_code == 401 or response.status_code == 404
    assert response.is_json and "code" in response.get_json()["error"]
