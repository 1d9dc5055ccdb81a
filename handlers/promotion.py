"""publish_promotion_listing: put a recognised (3-star-and-up) product in the
trade-promotion catalogue, with its certificate's validity."""
from __future__ import annotations

from datetime import date

from marshmallow import Schema, fields, validate
from sqlalchemy import bindparam, insert, select

from handlers.context import HandlerContext
from handlers.registry import handler
from storage.criteria import certificate_validity_months
from storage.models import Jurisdiction, Producer, PromotionListing

CHANNELS = ("trade_fair", "ocop_sales_point", "ecommerce", "retail_week", "regional_database")


class PublishListingParams(Schema):
    stars = fields.Integer(required=True, validate=validate.Range(min=3, max=5))
    channels = fields.List(fields.String(validate=validate.OneOf(CHANNELS)), required=True,
                           validate=validate.Length(min=1))
    # The certificate the recognition decision granted: the listing links it
    # and lasts as long as it (without one, 36 months from today as before).
    certificate_id = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1))
    valid_until = fields.Date(load_default=None, allow_none=True)


@handler("publish_promotion_listing", PublishListingParams,
         "Đăng sản phẩm 3 sao trở lên lên danh mục xúc tiến thương mại / "
         "list a 3-star-and-up product for trade promotion",
         result={"listing_id": "id", "valid_until": "ISO date"})
def publish_promotion_listing(context: HandlerContext, stars: int, channels: list[str],
                              certificate_id: int | None = None, valid_until: date | None = None) -> dict:
    connection, instance = context.connection, context.instance
    listing = connection.execute(_LISTING_OF, {"instance_id": instance.id}).first()
    if listing is not None:  # published by an earlier run of this task (a retry)
        listing_id, stars, valid_until = listing
    else:
        product = instance.product
        names = connection.execute(_NAMES_OF_PRODUCER, {"producer_id": product.producer_id}).one()
        if valid_until is None:
            valid_until = add_months(context.today, certificate_validity_months())
        listing_id = connection.execute(_INSERT_LISTING, dict(
            instance_id=instance.id, product_id=product.id, product_name=product.name,
            producer_name=names.producer_name, commune_name=names.commune_name,
            province_id=instance.areas["province"],
            group_code=product.group_code, stars=stars, certified_on=context.today,
            valid_until=valid_until, channels=sorted(set(channels)), certificate_id=certificate_id,
            published_at=context.now)).inserted_primary_key[0]
    return {"listing_id": listing_id, "stars": stars, "valid_until": valid_until.isoformat()}


# Built once, and plain Core (as the other handlers): nothing here needs ORM objects.
_listings, _producers, _communes = PromotionListing.__table__, Producer.__table__, Jurisdiction.__table__
_LISTING_OF = select(_listings.c.id, _listings.c.stars, _listings.c.valid_until).where(
    _listings.c.instance_id == bindparam("instance_id"))
_NAMES_OF_PRODUCER = (
    select(_producers.c.name.label("producer_name"), _communes.c.name.label("commune_name"))
    .join(_communes, _communes.c.id == _producers.c.commune_id).where(_producers.c.id == bindparam("producer_id")))
_INSERT_LISTING = insert(_listings)


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last_day in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last_day))
        except ValueError:
            continue
    raise AssertionError("unreachable")
