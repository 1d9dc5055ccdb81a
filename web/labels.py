"""Display labels for the values the engine and the programme keep as
keys -- roles, cycle steps, end events, forms, producer kinds, promotion
channels -- in one place for every page. The Vietnamese text is written out
here (not looked up) so the message extractor finds it;
tests/test_web_i18n.py checks the roles match engine.roles."""
from flask_babel import lazy_gettext as _l

ROLE_LABELS = {
    "producer": _l("Chủ thể OCOP"),
    "commune_officer": _l("Cán bộ OCOP xã"),
    "district_officer": _l("Cán bộ OCOP huyện"),
    "district_council": _l("Hội đồng đánh giá cấp huyện"),
    "province_advisory": _l("Tổ tư vấn cấp tỉnh"),
    "province_council": _l("Hội đồng đánh giá cấp tỉnh"),
    "central_council": _l("Hội đồng đánh giá cấp Trung ương"),
    "district_committee": _l("Ủy ban nhân dân huyện"),
    "province_committee": _l("Ủy ban nhân dân tỉnh"),
    "province_office": _l("Văn phòng Điều phối OCOP tỉnh"),
    "ministry": _l("Bộ Nông nghiệp và Môi trường"),
    "program_manager": _l("Quản lý chương trình"),
    "auditor": _l("Kiểm toán viên"),
    "admin": _l("Quản trị hệ thống"),
}

# The levels of the area tree.
LEVEL_LABELS = {"central": _l("Trung ương"), "province": _l("cấp tỉnh"),
                "district": _l("cấp huyện"), "commune": _l("cấp xã")}

# The cycle's six steps (Decision 490/QĐ-TTg).
STEP_LABELS = {
    1: _l("Tuyên truyền, hướng dẫn"),
    2: _l("Đăng ký ý tưởng sản phẩm"),
    3: _l("Phương án sản xuất kinh doanh"),
    4: _l("Triển khai phương án"),
    5: _l("Đánh giá và xếp hạng"),
    6: _l("Xúc tiến thương mại"),
}

# Which check found a diagram problem (engine.errors.Problem.layer).
PROBLEM_LAYER_LABELS = {"xml": _l("Tệp XML"), "bpmn": _l("Cấu trúc BPMN"),
                        "lint": _l("Quy tắc của hệ thống"), "dryrun": _l("Chạy thử")}

# How an instance ended (its end event).
END_LABELS = {"end_recognised": _l("Được công nhận"), "end_not_recognised": _l("Không được công nhận"),
              "end_idea_limit": _l("Dừng: hết lượt nộp lại ý tưởng"),
              "end_plan_limit": _l("Dừng: hết lượt nộp lại phương án"),
              "end_dossier_limit": _l("Dừng: hết lượt bổ sung hồ sơ")}

# The forms user tasks open (their formKey).
FORM_TITLES = {
    "register_idea": _l("Đăng ký ý tưởng sản phẩm"),
    "receive_idea": _l("Tiếp nhận ý tưởng"),
    "review_idea": _l("Đánh giá ý tưởng"),
    "submit_plan": _l("Nộp phương án sản xuất kinh doanh"),
    "review_plan": _l("Đánh giá phương án"),
    "support_record": _l("Ghi nhận hỗ trợ tại cơ sở"),
    "submit_dossier": _l("Nộp hồ sơ sản phẩm"),
    "check_dossier": _l("Kiểm tra hồ sơ sản phẩm"),
    "commune_assessment": _l("Đánh giá của xã"),
    "advisory_review": _l("Xem xét của tổ tư vấn"),
    "score_product": _l("Chấm điểm sản phẩm"),
    "plan_outreach": _l("Kế hoạch tuyên truyền"),
    "outreach_report": _l("Báo cáo tuyên truyền"),
    "confirm_done": _l("Xác nhận đã làm xong"),
    "council_attendance": _l("Điểm danh phiên họp hội đồng"),
    "council_sheet": _l("Phiếu đánh giá sản phẩm OCOP"),
    "council_spread": _l("Chênh lệch điểm giữa các thành viên"),
    "council_sign_off": _l("Xác nhận biên bản phiên họp"),
    "recognition_decision": _l("Quyết định công nhận"),
    "central_fallback": _l("Quyết định khi Bộ đánh giá dưới 90 điểm"),
}

# A cycle step on a product's timeline.
STATE_LABELS = {"done": _l("đã xong"), "current": _l("đang thực hiện"),
                "stopped": _l("dừng tại bước này"), "todo": _l("chưa tới")}
KIND_LABELS = {"cooperative": _l("Hợp tác xã"), "cooperative_group": _l("Tổ hợp tác"),
               "enterprise": _l("Doanh nghiệp"), "household": _l("Hộ sản xuất có đăng ký kinh doanh"),
               "farm": _l("Trang trại")}

CHANNEL_LABELS = {"trade_fair": _l("Hội chợ, triển lãm"), "ocop_sales_point": _l("Điểm bán sản phẩm OCOP"),
                  "ecommerce": _l("Sàn thương mại điện tử"), "retail_week": _l("Tuần hàng tại hệ thống bán lẻ"),
                  "regional_database": _l("Cơ sở dữ liệu sản phẩm vùng miền")}

# A member's role on an evaluation council (storage.council_models.COUNCIL_ROLES).
COUNCIL_ROLE_LABELS = {"chair": _l("Chủ tịch hội đồng"), "vice_chair": _l("Phó chủ tịch"),
                       "member": _l("Ủy viên"), "secretary": _l("Thư ký")}
# A council's level.
COUNCIL_LEVEL_LABELS = {"district": _l("Hội đồng cấp huyện"), "province": _l("Hội đồng cấp tỉnh"),
                        "central": _l("Hội đồng cấp Trung ương")}
# What a council's admin log line records (programme.councils).
COUNCIL_ACTION_LABELS = {"council_created": _l("Lập hội đồng"), "council_settings": _l("Đổi quy chế"),
                         "member_added": _l("Thêm thành viên"), "member_role": _l("Đổi vai trò"),
                         "member_removed": _l("Thành viên rời hội đồng")}
