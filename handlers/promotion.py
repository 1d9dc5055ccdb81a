"""publish_promotion_listing: put a recognised (3-star-and-up) product in the
trade-promotion catalogue, with its certificate's validity."""
from __future__ import annotations

from datetime import date

from marshmallow import Schema, fields, validate
from sqlalchemy import select

from handlers.registry import HandlerContext, handler
from storage.criteria import certificate_validity_months
from storage.models import PromotionListing

CHANNELS = ("trade_fair", "ocop_sales_point", "ecommerce", "retail_week", "regional_database")


class PublishListingParams(Schema):
    stars = fields.Integer(required=True, validate=validate.Range(min=3, max=5))
    channels = fields.List(fields.String(validate=validate.OneOf(CHANNELS)), required=True,
                           validate=validate.Length(min=1))


@handler("publish_promotion_listing", PublishListingParams,
         "Đăng sản phẩm 3 sao trở lên lên danh mục xúc tiến thương mại / "
         "list a 3-star-and-up product for trade promotion",
         result={"listing_id": "id", "valid_until": "ISO date"})
def publish_promotion_listing(context: HandlerContext, stars: int, channels: list[str]) -> dict:
    session, instance = context.session, context.instance
    listing = session.scalar(select(PromotionListing).where(PromotionListing.instance_id == instance.id))
    if listing is None:
        product = instance.product
        producer = product.producer
        listing = PromotionListing(
            instance_id=instance.id, product_id=product.id, product_name=product.name,
            producer_name=producer.name, commune_name=producer.commune.name,
            province_id=instance.areas["province"],
            group_code=product.group_code, stars=stars, certified_on=context.today,
            valid_until=add_months(context.today, certificate_validity_months()),
            channels=sorted(set(channels)), published_at=context.now)
        session.add(listing)
        session.flush()
    return {"listing_id": listing.id, "stars": listing.stars,
            "valid_until": listing.valid_until.isoformat()}


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last_day in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last_day))
        except ValueError:
            continue
    raise AssertionError("unreachable")
