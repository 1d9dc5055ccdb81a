"""The OCOP score sheets of Decision 26/2026 (processes/criteria/*.json):
reference data read from files, cached once per process."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

CRITERIA_DIR = Path(__file__).resolve().parents[1] / "processes" / "criteria"


@lru_cache(maxsize=1)
def index() -> dict:
    return json.loads((CRITERIA_DIR / "index.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def sets_by_code() -> dict[str, dict]:
    """Criteria set code (S01..S26) -> its entry in index.json."""
    return {entry["code"]: entry for entry in index()["sets"]}


@lru_cache(maxsize=32)
def criteria_set(code: str) -> dict:
    """The full score sheet of one set (sections, groups, criteria, levels)."""
    entry = sets_by_code()[code]
    return json.loads((CRITERIA_DIR / entry["file"]).read_text(encoding="utf-8"))


def section_maxima(code: str) -> dict[str, float]:
    """{'A': 40, 'B': 25, 'C': 35} for the set."""
    return dict(sets_by_code()[code]["section_max"])


def star_bands() -> list[dict]:
    """Bands from the highest: each has stars, min_inclusive and certificate."""
    return sorted(index()["star_bands"]["bands"], key=lambda band: -band["stars"])


def certificate_validity_months() -> int:
    return int(index()["star_bands"]["certificate_validity_months"])


def mandatory_criteria(code: str) -> list[dict]:
    """Criteria of the set with a starred minimum ("required from N stars"),
    in sheet order: id, Vietnamese and English text, from_star, and the
    minimum points per star level."""
    found = []

    def walk(node):
        for criterion in node.get("criteria") or []:
            if criterion.get("mandatory_from_star"):
                found.append({"id": criterion["id"], "text_vi": criterion["text_vi"],
                              "text_en": criterion.get("text_en", ""),
                              "from_star": int(criterion["mandatory_from_star"]),
                              "min_points": criterion.get("min_points_for_stars") or {}})
            walk(criterion)

    for section in criteria_set(code)["sections"]:
        for group in section.get("groups", []):
            walk(group)
    return found


def star_cap(code: str, minimums_missed: list[str]) -> int:
    """The highest rank a product may take when it misses the starred
    minimum of these criteria: below the lowest level any of them is
    required for (5 when none is missed)."""
    from_star = {c["id"]: c["from_star"] for c in mandatory_criteria(code)}
    unknown = [cid for cid in minimums_missed if cid not in from_star]
    if unknown:
        raise ValueError(f"not a starred criterion of set {code}: {', '.join(unknown)}")
    return min([from_star[cid] - 1 for cid in minimums_missed], default=5)
