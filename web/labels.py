"""Display labels for values the engine keeps as keys. The Vietnamese text
is written out here (not looked up) so the message extractor finds it;
tests/test_web_i18n.py checks it matches engine.roles."""
from flask_babel import lazy_gettext as _l

ROLE_LABELS = {
    "producer": _l("Chủ thể OCOP"),
    "commune_officer": _l("Cán bộ OCOP xã"),
    "district_officer": _l("Cán bộ OCOP huyện"),
    "district_council": _l("Hội đồng đánh giá cấp huyện"),
    "province_advisory": _l("Tổ tư vấn cấp tỉnh"),
    "province_council": _l("Hội đồng đánh giá cấp tỉnh"),
    "central_council": _l("Hội đồng đánh giá cấp Trung ương"),
    "program_manager": _l("Quản lý chương trình"),
    "auditor": _l("Kiểm toán viên"),
    "admin": _l("Quản trị hệ thống"),
}
