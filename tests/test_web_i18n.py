"""Vietnamese first, English second: every UI string has its English."""
from pathlib import Path

from babel.messages.pofile import read_po

from engine.roles import ROLES
from web.labels import ROLE_LABELS

CATALOG = Path(__file__).resolve().parents[1] / "web" / "translations" / "en" / "LC_MESSAGES" / "messages.po"


def test_role_labels_match_the_engine():
    assert {key: str(label._args[0]) for key, label in ROLE_LABELS.items()} == \
        {key: role.label_vi for key, role in ROLES.items()}


def test_english_catalog_is_complete():
    catalog = read_po(CATALOG.open("rb"))
    missing = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert missing == []


def test_pages_switch_language(client):
    vietnamese = client.get("/overview").get_data(as_text=True)
    english = client.get("/overview?lang=en").get_data(as_text=True)
    assert "Chu trình OCOP thường niên" in vietnamese and 'lang="vi"' in vietnamese
    assert "Chu trình OCOP thường niên" not in english and 'lang="en"' in english
    english_login = client.get("/login").get_data(as_text=True)  # the choice stays for the session
    assert "Log in" in english_login and "Đăng nhập" not in english_login
