"""open_registration_window: cycle step 1 ends by opening idea registration for
the campaign's area (a product cycle can only start while one is open)."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validates_schema
from sqlalchemy import select

from handlers.context import HandlerContext
from handlers.registry import handler
from storage.models import RegistrationWindow


class OpenWindowParams(Schema):
    opens = fields.Date(required=True)
    closes = fields.Date(required=True)

    @validates_schema
    def _order(self, data, **kwargs):
        if data["closes"] < data["opens"]:
            raise ValidationError("closes must not be before opens", "closes")


@handler("open_registration_window", OpenWindowParams,
         "Mở đợt đăng ký ý tưởng sản phẩm cho địa bàn / open idea registration for the area",
         result={"window_id": "id", "opens": "ISO date", "closes": "ISO date"})
def open_registration_window(context: HandlerContext, opens, closes) -> dict:
    instance = context.instance
    window = context.session.scalar(
        select(RegistrationWindow).where(RegistrationWindow.instance_id == instance.id))
    if window is None:
        window = RegistrationWindow(jurisdiction_id=instance.jurisdiction_id, year=instance.year,
                                    opens_on=opens, closes_on=closes, instance_id=instance.id)
        context.session.add(window)
        context.session.flush()
    return {"window_id": window.id, "opens": window.opens_on.isoformat(),
            "closes": window.closes_on.isoformat()}
