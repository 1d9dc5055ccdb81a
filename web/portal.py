"""Producers' portal (being built)."""
from flask import Blueprint

portal = Blueprint("portal", __name__, url_prefix="/portal")


@portal.get("/")
def index():
    return "portal"
