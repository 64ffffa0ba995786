"""What counts as a change, derived from the layout's column facts plus the code-level events.

Field changes (``<field>_changed``) come from ``contracts.layout``: every tracked field, its change
class and the CMS action codes that announce it. Events (a code added, discontinued, dropped, back
again) are about the code, not a column, so they are listed here. ``history.py`` generates its SQL
from these tables; ``announcements`` lines them up with what CMS announced.
"""

from __future__ import annotations

from contracts.layout import CHANGE_CLASSES, FIELDS, TRACKED_FIELDS, ChangeClass, Field

#: Code-level change types: what each means and the CMS action codes that announce it.
EVENTS: dict[str, ChangeClass] = {
    "added": ChangeClass("First appearance of the code in any published release.", "A"),
    "discontinued": ChangeClass("Termination date set (was blank in the previous release).",
                                "D"),
    "dropped": ChangeClass("Present in the previous release, absent from this one (silent when "
                           "it had no termination date: CMS removed it without saying so).", ""),
    "reactivated": ChangeClass("Back in force (termination date cleared, or back in the file) "
                               "with the same add date and meaning: the same episode continues.",
                               "R"),
    "redefined": ChangeClass("Same code in consecutive releases with a later add date and a "
                             "different long description: CMS redefined it in place; a new "
                             "episode starts, the old meaning is kept in history.", "A"),
    "reused": ChangeClass("Back after termination or absence with a new add date or a different "
                          "long description: a new episode starts, the old meaning is kept in "
                          "history.", "AR"),
}


def _field_description(f: Field) -> str:
    ignored = " (whitespace-only differences ignored)." if f.compare == "whitespace" else "."
    return f"Value of {f.name} differs from the previous release{ignored}"


#: change type -> the action codes (record layout §3.1) under which CMS announces that change.
EXPECTED_ACTIONS: dict[str, str] = {
    **{name: e.announced_by for name, e in EVENTS.items() if e.announced_by},
    **{f"{f.name}_changed": CHANGE_CLASSES[f.change].announced_by for f in TRACKED_FIELDS},
}

CHANGE_TYPE_DESCRIPTIONS: dict[str, str] = {
    **{name: e.description for name, e in EVENTS.items()},
    **{f"{f.name}_changed": _field_description(f) for f in TRACKED_FIELDS},
}


#: Value types of code_changes: a change's old and new value are kept in the column pair of its
#: type (``old_date``/``new_date`` ...), with this SQL type; ``old_value``/``new_value`` are text.
VALUE_TYPES: dict[str, str] = {
    "text": "VARCHAR", "date": "DATE", "list": "VARCHAR[]", "number": "INTEGER"}


def value_type(name: str) -> str:
    """The value type of a layout field: list for a repeating group, else by its type."""
    f = FIELDS[name]
    if f.occurs > 1:
        return "list"
    return {"date": "date", "int": "number"}.get(f.type, "text")
