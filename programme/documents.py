"""A product's evidence files, for the producers' portal: uploading one
(the producer or its commune officer) and finding one to download
(whoever may read the product).

The bytes live in a storage.documents.DocumentStore, by content; the
database keeps one Document row per upload.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from engine.access import Actor
from engine.errors import NotAllowed
from engine.forms import CONTROL_CHARACTERS
from programme.products import readable_product
from storage.db import Database
from storage.documents import DocumentRefused, DocumentStore, check_upload, clean_filename
from storage.models import Document


def add_document(db: Database, store: DocumentStore, actor: Actor, product_id: int, filename: str,
                 data: bytes, now: datetime) -> Document:
    """Keep an uploaded file as evidence of a product the actor manages --
    one transaction. Raises DocumentRefused (empty, too big, a type not
    accepted, content that does not match its name) before anything is
    stored, NotAllowed when the actor may not manage the product. A file
    name with control characters (engine.forms.CONTROL_CHARACTERS: bidi
    controls make "x\u202egnp.exe" read as "xexe.png") is refused ("name"),
    not cleaned: the name the producer sees must be the name it is."""
    if CONTROL_CHARACTERS.search(filename or ""):
        raise DocumentRefused("name")
    filename = clean_filename(filename)
    content_type = check_upload(filename, data)
    with db.transaction() as session:
        if readable_product(session, actor, product_id, manage=True) is None:
            raise NotAllowed("only the producer or its commune officer may upload its evidence")
        # Bytes first, row second: if the row is not committed the stored
        # file is only an unreferenced copy (content is stored once, so a
        # retry reuses it), never a row pointing at a file that is not there.
        digest = store.put(data)
        document = Document(sha256=digest, filename=filename, content_type=content_type, size=len(data),
                            product_id=product_id, uploaded_by=actor.user_id, uploaded_at=now)
        session.add(document)
        session.flush()
        return document


def readable_document(session: Session, actor: Actor, document_id: int) -> Document | None:
    """The document if the actor may read its product, else None (pages
    answer 404 for both, as for a product)."""
    document = session.get(Document, document_id)
    if document is None or readable_product(session, actor, document.product_id) is None:
        return None
    return document
