"""Officers' task inbox (being built)."""
from flask import Blueprint

inbox = Blueprint("inbox", __name__, url_prefix="/inbox")


@inbox.get("/")
def index():
    return "inbox"
