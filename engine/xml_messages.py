"""libxml2's messages (XML syntax, XSD validation) in plain words.

libxml2 speaks to programmers: "Excessive depth in document: 256, use
XML_PARSE_HUGE option" names a parser option the user cannot set, and the
schema messages name elements by namespace URI. The common ones are said
here in Vietnamese and English; anything else keeps libxml2's text, on one
line, with namespace URIs shortened to the prefixes a modeler shows.
"""
from __future__ import annotations

import re

PREFIXES = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}

# (pattern, Vietnamese, English); the pattern's groups fill the {}.
_SYNTAX = (
    (r"Premature end of data|EndTag: '</' not found|Extra content at the end",
     "tệp bị cắt ngang hoặc thừa nội dung sau phần tử cuối",
     "the file is cut short, or has content after its last element"),
    (r"Opening and ending tag mismatch: ([\w:.-]+) line \d+ and ([\w:.-]+)",
     "thẻ mở <{}> và thẻ đóng </{}> không khớp nhau",
     "the opening tag <{}> and the closing tag </{}> do not match"),
    (r"Couldn't find end of Start Tag ([\w:.-]+)",
     "thẻ <{}> không được đóng đúng cách",
     "the tag <{}> is not closed properly"),
    (r"Namespace prefix ([\w.-]+) .*is not defined",
     "tiền tố namespace '{}' chưa được khai báo",
     "the namespace prefix '{}' is not declared"),
    (r"Attribute ([\w:.-]+) redefined",
     "thuộc tính '{}' xuất hiện hai lần trên cùng một phần tử",
     "the attribute '{}' appears twice on one element"),
)
_XSD = (
    (r"Element '([^']+)', attribute '([^']+)': The attribute '[^']+' is not allowed\.",
     "{0} không được có thuộc tính '{1}'", "{0} may not have the attribute '{1}'"),
    (r"Element '([^']+)': The attribute '([^']+)' is required but missing\.",
     "{0} thiếu thuộc tính bắt buộc '{1}'", "{0} lacks the required attribute '{1}'"),
    (r"Element '([^']+)': This element is not expected\. Expected is (?:one of )?\( ?(.*?) ?\)\.",
     "{0} không được đặt ở vị trí này (ở đây cần: {1})", "{0} is not expected here (expected: {1})"),
    (r"Element '([^']+)': Missing child element\(s\)\. Expected is (?:one of )?\( ?(.*?) ?\)\.",
     "{0} thiếu phần tử con (cần: {1})", "{0} lacks a child element (expected: {1})"),
    (r"Element '([^']+)': This element is not expected\.",
     "{0} không được đặt ở vị trí này", "{0} is not expected here"),
    (r"Element '([^']+)', attribute '([^']+)': '([^']*)' is not a valid value of the atomic type 'xs:ID'\.",
     "mã '{2}' của {0} không hợp lệ", "the id '{2}' of {0} is not valid"),
    (r"Element '([^']+)', attribute '([^']+)': '([^']*)' is not a valid value of the (?:atomic|list) type '([^']+)'\.",
     "giá trị '{2}' của thuộc tính '{1}' trên {0} không hợp lệ (cần kiểu {3})",
     "the value '{2}' of the attribute '{1}' of {0} is not valid (type {3} expected)"),
    (r"Element '([^']+)': '([^']*)' is not a valid value of the (?:atomic|list) type '([^']+)'\.",
     "giá trị '{1}' của {0} không hợp lệ (cần kiểu {2})",
     "the value '{1}' of {0} is not valid (type {2} expected)"),
    (r"Element '([^']+)', attribute 'xsi:type': The QName value '([^']*)' of the xsi:type attribute does not "
     r"resolve to a type definition\.",
     "kiểu '{1}' (xsi:type) của {0} không tồn tại", "the type '{1}' (xsi:type) of {0} does not exist"),
    (r"Element '([^']+)': No match found for key-sequence \['([^']*)'\] of keyref '[^']+'\.",
     "{0} tham chiếu '{1}', nhưng không có phần tử nào mang mã đó",
     "{0} refers to '{1}', but no element has that id"),
)


def short(message: str) -> str:
    """One line, namespace URIs as prefixes."""
    for prefix, uri in PREFIXES.items():
        message = message.replace(f"{{{uri}}}", f"{prefix}:")
    return " ".join((message or "").split())


def _plain(catalog, message: str) -> tuple[str, str] | None:
    for pattern, vi, en in catalog:
        match = re.search(pattern, message)
        if match:
            return vi.format(*match.groups()), en.format(*match.groups())
    return None


def syntax(message: str, depth_limit: int) -> tuple[str, str]:
    """A libxml2 syntax error as (Vietnamese, English); the Problem carries the line."""
    message = short(message)
    if "Excessive depth" in message:
        return (f"Các phần tử XML lồng nhau quá sâu (quá {depth_limit} cấp): "
                "một sơ đồ BPMN không bao giờ cần sâu như vậy",
                f"The XML elements are nested too deeply (more than {depth_limit} levels): "
                "no BPMN diagram needs that")
    plain = _plain(_SYNTAX, message)
    vi, en = plain if plain else (message, message)
    return f"XML không hợp lệ: {vi}", f"The XML is not well-formed: {en}"


def xsd(message: str) -> tuple[str, str]:
    """A schema validation error as (Vietnamese, English)."""
    message = short(message)
    vi, en = _plain(_XSD, message) or (message, message)
    return f"Không đúng lược đồ BPMN (XSD): {vi}", f"XSD: not valid BPMN: {en}"
