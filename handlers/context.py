"""What a service-task handler receives: the context of one call.

Every caller (a live engine call, a migration, a replay) gives the handler
the same typed, read-only view of the instance (`InstanceView`), whatever
it read the instance as (a plain row, an ORM object).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storage.db import connection_of


@dataclass(frozen=True)
class ProductView:
    """The product an instance runs for."""

    id: int
    name: str
    producer_id: int
    group_code: str


@dataclass(frozen=True)
class InstanceView:
    """The instance a service task runs in, as handlers see it. `areas` is
    the product's area chain ({"commune": id, "district": id, "province":
    id, "central": id}, levels the area has), read-only."""

    id: int
    product: ProductView | None
    jurisdiction_id: int
    areas: Mapping[str, int]
    year: int

    @property
    def product_id(self) -> int | None:
        return self.product.id if self.product is not None else None

    @classmethod
    def of(cls, instance) -> "InstanceView":
        """The view of any instance-like object: a plain row, an ORM
        ProcessInstance (its product an ORM Product), or a view already."""
        if isinstance(instance, InstanceView):
            return instance
        product = instance.product
        if product is not None and not isinstance(product, ProductView):
            product = ProductView(product.id, product.name, product.producer_id, product.group_code)
        return cls(instance.id, product, instance.jurisdiction_id, MappingProxyType(dict(instance.areas or {})),
                   instance.year)


class HandlerContext:
    """What a handler may use: the open transaction (its writes commit or
    roll back with the engine call) as a Core `connection`, or as an ORM
    `session` made on first use; the instance (an `InstanceView`, read-only),
    the element being run and the process variables (read-only by
    convention)."""

    def __init__(self, unit: Session | Connection, instance, element_id: str, data: dict,
                 today: date, now: datetime):
        self.connection = connection_of(unit)
        self._session = unit if isinstance(unit, Session) else None
        self._own_session = False
        self.instance = InstanceView.of(instance)
        self.element_id, self.data, self.today, self.now = element_id, data, today, now

    @property
    def session(self) -> Session:
        # Most handlers need only the connection; an ORM session costs as
        # much as their statements, so it is made only for those that ask.
        if self._session is None:
            self._session = Session(bind=self.connection)
            self._own_session = True
        return self._session

    def release(self, write: bool = True) -> None:
        """Write what the handler left in a session made for it (unless it
        failed: the engine call is rolled back anyway), and close it. The
        transaction stays open: it belongs to the engine call."""
        if self._own_session:
            try:
                if write:
                    self._session.flush()
            finally:
                self._session.close()
            self._session, self._own_session = None, False
