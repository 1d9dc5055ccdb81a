"""A product's evidence files, for the producers' portal: uploading one
(the producer or its commune officer) and finding one to download
(whoever may read the product).

The bytes live in a storage.documents.DocumentStore, by content; the
database keeps one Document row per upload.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.diagram import PRODUCT_PROCESS
from engine.errors import NotAllowed
from engine.forms import CONTROL_CHARACTERS
from programme.products import readable_product
from storage.db import Database
from storage.documents import DocumentRefused, DocumentStore, check_upload, clean_filename
from storage.models import Document, ProcessInstance

# The types a browser may show in its own tab (opened "inline" from the score
# sheet); every other type is always a download.
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "application/pdf"})


def add_document(db: Database, store: DocumentStore, actor: Actor, product_id: int, filename: str,
                 data: bytes, now: datetime, criteria: list[str] | None = None,
                 valid_until: date | None = None, instance_id: int | None = None) -> Document:
    """Keep an uploaded file as evidence of a product the actor manages --
    one transaction. Raises DocumentRefused (empty, too big, a type not
    accepted, content that does not match its name) before anything is
    stored, NotAllowed when the actor may not manage the product. A file
    name with control characters (engine.forms.CONTROL_CHARACTERS: bidi
    controls make "x\u202egnp.exe" read as "xexe.png") is refused ("name"),
    not cleaned: the name the producer sees must be the name it is.

    `criteria` ties the file to criteria of the product's set (ids refused
    otherwise: "criteria"), `instance_id` to one of the product's cycles
    ("cycle" otherwise), `valid_until` says until when it holds."""
    if CONTROL_CHARACTERS.search(filename or ""):
        raise DocumentRefused("name")
    filename = clean_filename(filename)
    content_type = check_upload(filename, data)
    with db.transaction() as session:
        product = readable_product(session, actor, product_id, manage=True)
        if product is None:
            raise NotAllowed("only the producer or its commune officer may upload its evidence")
        criteria = check_criteria(product.group_code, criteria or [])
        if instance_id is not None:
            instance = session.get(ProcessInstance, instance_id)
            if instance is None or instance.product_id != product_id:
                raise DocumentRefused("cycle")
        # Bytes first, row second: if the row is not committed the stored
        # file is only an unreferenced copy (content is stored once, so a
        # retry reuses it), never a row pointing at a file that is not there.
        digest = store.put(data)
        document = Document(sha256=digest, filename=filename, content_type=content_type, size=len(data),
                            product_id=product_id, uploaded_by=actor.user_id, uploaded_at=now,
                            criteria=criteria, valid_until=valid_until, instance_id=instance_id)
        session.add(document)
        session.flush()
        return document


def running_cycle(session: Session, product_id: int) -> int | None:
    """The product's running cycle (the instance an upload is for), if any."""
    return session.scalar(select(ProcessInstance.id).where(
        ProcessInstance.product_id == product_id, ProcessInstance.status == "running",
        ProcessInstance.process_id == PRODUCT_PROCESS).order_by(ProcessInstance.id.desc()).limit(1))


def readable_document(session: Session, actor: Actor, document_id: int) -> Document | None:
    """The document if the actor may read its product, else None (pages
    answer 404 for both, as for a product)."""
    document = session.get(Document, document_id)
    if document is None or readable_product(session, actor, document.product_id) is None:
        return None
    return document


def check_criteria(group_code: str | None, criteria: list[str]) -> list[str]:
    """The criterion ids, each once and in sheet order, if every one is an
    item of the set; raises DocumentRefused("criteria") otherwise."""
    from programme.score_sheets import scorable_items, set_code
    order = [item["id"] for item in scorable_items(set_code(group_code))]
    wanted = set(criteria)
    if not wanted <= set(order):
        raise DocumentRefused("criteria")
    return [cid for cid in order if cid in wanted]
