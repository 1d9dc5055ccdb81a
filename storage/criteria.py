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


# --- the sheet a council member fills -------------------------------------------

IMPLIED_LEVEL_TEXT = {"no": ("Không đạt", "not met"), "yes": ("Đạt", "met")}


def _points(level: dict) -> int | float:
    """A level's points: as printed (a whole number on every sheet shipped),
    or the inferred value where the source left the cell blank
    (processes/criteria/README.md, "Blank points cell")."""
    points = level.get("points")
    return level.get("points_inferred", 0) if points is None else points


def _levels_of(node: dict) -> list[dict]:
    """The options of a scorable node, whatever shape the sheet prints: its
    levels; the implied 0/1 of the bilingual-label item that has none; or,
    for S26's "choose a case", every level of every case (the key names
    the case, so one key still says what was chosen)."""
    if node.get("levels"):
        return [{"key": lv["key"], "points": _points(lv), "text_vi": lv["text_vi"],
                 "text_en": lv.get("text_en", ""), "star_marker": lv.get("star_marker"), "case_vi": None,
                 "inferred": lv.get("points") is None}
                for lv in node["levels"]]
    if node.get("implied_levels"):
        return [{"key": lv["key"], "points": _points(lv),
                 "text_vi": IMPLIED_LEVEL_TEXT[lv["key"].rsplit("#", 1)[1]][0],
                 "text_en": IMPLIED_LEVEL_TEXT[lv["key"].rsplit("#", 1)[1]][1],
                 "star_marker": None, "case_vi": None}
                for lv in node["implied_levels"]]
    return [{"key": lv["key"], "points": _points(lv), "text_vi": lv["text_vi"], "text_en": lv.get("text_en", ""),
             "star_marker": lv.get("star_marker"), "case_vi": case["label_vi"]}
            for case in node.get("cases") or [] for lv in case["levels"]]


@lru_cache(maxsize=32)
def _scorable_items(code: str) -> tuple[dict, ...]:
    items = []

    def walk(node: dict, section: str, group: dict) -> None:
        if node.get("criteria"):
            for child in node["criteria"]:
                walk(child, section, group)
            return
        levels = _levels_of(node)
        if not levels:
            raise ValueError(f"criterion {node['id']} of set {code} has nothing to choose")
        items.append({"id": node["id"], "section": section, "group_id": group["id"],
                      "group_text_vi": group["text_vi"], "text_vi": node["text_vi"],
                      "text_en": node.get("text_en", ""), "max_points": node.get("max_points") or 0,
                      "notes": list(node.get("notes") or []), "levels": levels,
                      "min_points_for_stars": dict(node.get("min_points_for_stars") or {})})

    for section in criteria_set(code)["sections"]:
        for group in section.get("groups", []):
            walk(group, section["code"], group)
    return tuple(items)


def scorable_items(code: str) -> list[dict]:
    """Every item a member chooses one level for, in sheet order: id,
    section (A/B/C), group, texts, notes, levels (key, points, texts, star
    marker, S26 case) and the starred minimum points per rank."""
    return [dict(item) for item in _scorable_items(code)]


@lru_cache(maxsize=32)
def level_points(code: str) -> dict[str, int | float]:
    """level key -> points, for every option of the set's sheet."""
    return {level["key"]: level["points"] for item in _scorable_items(code) for level in item["levels"]}


@lru_cache(maxsize=32)
def level_owner(code: str) -> dict[str, str]:
    """level key -> the id of the item it is an option of."""
    return {level["key"]: item["id"] for item in _scorable_items(code) for level in item["levels"]}


@lru_cache(maxsize=32)
def _eliminations(code: str) -> tuple[dict, ...]:
    found = [{"key": f"set#{index}", "criterion_id": None, "text_vi": line["text_vi"],
              "text_en": line.get("text_en", "")}
             for index, line in enumerate(criteria_set(code).get("disqualifiers") or [])]

    def walk(node: dict) -> None:
        for index, note in enumerate(node.get("notes") or []):
            if note.get("eliminatory"):
                found.append({"key": f"{node['id']}#elim{index}", "criterion_id": node["id"],
                              "text_vi": note["text_vi"], "text_en": note.get("text_en", "")})
        for child in node.get("criteria") or []:
            walk(child)

    for section in criteria_set(code)["sections"]:
        for group in section.get("groups", []):
            walk(group)
    return tuple(found)


def eliminations(code: str) -> list[dict]:
    """The findings that eliminate a dossier on this set's sheet: the set's
    "Hồ sơ bị loại khi ..." line(s) (key set#i), then each criterion note
    marked eliminatory (key <criterion>#elim<i>)."""
    return [dict(line) for line in _eliminations(code)]
