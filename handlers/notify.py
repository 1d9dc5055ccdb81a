"""notify: record a message for the producer or the officers of an area.

The row is the outbox: it is written in the engine call's transaction and
delivered (in-app, e-mail) after commit by the background worker."""
from __future__ import annotations

from marshmallow import Schema, fields, validate
from sqlalchemy import insert

from handlers.context import HandlerContext
from handlers.registry import handler
from storage.models import Notification

# kind -> Vietnamese message ({product} is the product's name).
MESSAGES = {
    "idea_accepted": "Ý tưởng sản phẩm “{product}” đã được chấp nhận. Mời tham gia tập huấn xây dựng phương án.",
    "idea_returned": "Ý tưởng sản phẩm “{product}” được trả lại để bổ sung, hoàn thiện.",
    "plan_accepted": "Phương án sản xuất kinh doanh của “{product}” đã được chấp nhận.",
    "plan_returned": "Phương án sản xuất kinh doanh của “{product}” được trả lại để xây dựng lại.",
    "dossier_returned": "Hồ sơ sản phẩm “{product}” được trả lại để bổ sung.",
    "cycle_ended": "Sản phẩm “{product}” dừng chu trình OCOP năm nay vì đã hết số lần nộp lại.",
    "not_recognised": "Sản phẩm “{product}” chưa đạt 50 điểm, chưa được công nhận; có thể tham gia năm sau.",
    "recognised": "Sản phẩm “{product}” được công nhận {stars} sao OCOP.",
    "registration_open": "Đã mở đăng ký ý tưởng sản phẩm OCOP năm {year}.",
    # After recognition: revocation (Art. 8) and inspection (Art. 9).
    "certificate_revoked": "Giấy chứng nhận OCOP của sản phẩm “{product}” đã bị thu hồi.",
    "certificate_kept": "Cơ quan có thẩm quyền quyết định không thu hồi giấy chứng nhận OCOP của “{product}”.",
    "revocation_overdue": "Quá hạn 15 ngày quyết định thu hồi giấy chứng nhận OCOP của sản phẩm “{product}”.",
    "inspection_passed": "Sản phẩm “{product}” đã được kiểm tra sau công nhận; giấy chứng nhận giữ nguyên hiệu lực.",
    "certificate_reminder": "Giấy chứng nhận OCOP của “{product}” sắp hết hạn: chuẩn bị hồ sơ đánh giá, phân hạng lại (nhận hồ sơ từ 180 đến 120 ngày trước khi hết hạn).",
    "reevaluation_window_open": "Đã mở nhận hồ sơ đánh giá, phân hạng lại sản phẩm “{product}”; hạn nộp là 120 ngày trước khi giấy chứng nhận hết hạn.",
    "certificate_expired": "Giấy chứng nhận OCOP của sản phẩm “{product}” đã hết hiệu lực.",
    "re_recognised": "Sản phẩm “{product}” được công nhận lại sản phẩm OCOP; giấy chứng nhận mới đã được cấp.",
    "reevaluation_failed": "Sản phẩm “{product}” không đạt khi đánh giá, phân hạng lại; giấy chứng nhận hết hiệu lực khi hết hạn.",
    "upgraded": "Sản phẩm “{product}” được nâng hạng sao OCOP; giấy chứng nhận mới đã được cấp.",
    "upgrade_kept": "Sản phẩm “{product}” giữ hạng hiện tại: kết quả đánh giá không cao hơn hạng đã được công nhận.",
    "upgrade_stopped": "Đề nghị nâng hạng sản phẩm “{product}” dừng vì đã hết số lần nộp lại.",
}
RECIPIENTS = ("producer", "commune_officer", "district_officer", "province_council", "province_advisory")
# The province's OCOP coordination office (revocation, inspection): told at the province's area.
RECIPIENTS += ("province_office",)


class NotifyParams(Schema):
    recipient = fields.String(required=True, validate=validate.OneOf(RECIPIENTS))
    kind = fields.String(required=True, validate=validate.OneOf(tuple(MESSAGES)))
    reasons = fields.String(load_default="", validate=validate.Length(max=5000))


@handler("notify", NotifyParams,
         "Gửi thông báo cho chủ thể hoặc cán bộ của địa bàn / notify the producer or area officers",
         result={"notification_id": "id"})
def notify(context: HandlerContext, recipient: str, kind: str, reasons: str) -> dict:
    instance = context.instance
    product = instance.product
    message = MESSAGES[kind].format(
        product=product.name if product else "", stars=context.data.get("stars", ""),
        year=context.data.get("year", ""))
    producer_id = product.producer_id if (product and recipient == "producer") else None
    jurisdiction_id = None
    if recipient != "producer":
        level = recipient.split("_", 1)[0]
        jurisdiction_id = instance.areas.get(level)
    # A plain insert: nothing needs the row as an ORM object, and the
    # ORM's flush costs more than the rest of this handler.
    inserted = context.connection.execute(_INSERT, dict(
        instance_id=instance.id, recipient_role=recipient, producer_id=producer_id,
        jurisdiction_id=jurisdiction_id, kind=kind, message=message, reasons=reasons or "",
        created_at=context.now, delivery_attempts=0))
    return {"notification_id": inserted.inserted_primary_key[0]}


_INSERT = insert(Notification.__table__)
