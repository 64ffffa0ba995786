"""What counts as a change, as data: the fields compared between releases and the CMS action codes
that explain each change type. ``history.py`` generates its SQL from these tables.
"""

from __future__ import annotations

from transforms.layout import CODES_SCHEMA

#: Fields that are CMS's bookkeeping about a change rather than the code's content: never diffed.
NOT_CONTENT = frozenset(
    {"code", "kind", "action_code", "action_effective_date", "source_line", "line_count",
     "unparsed_values"}
)

#: Every compared field, in layout order. Descriptions are compared with whitespace collapsed.
TRACKED_FIELDS: tuple[str, ...] = tuple(c for c in CODES_SCHEMA if c not in NOT_CONTENT)
WHITESPACE_INSENSITIVE = frozenset({"long_description", "short_description"})

_PAYMENT = ("pricing_indicators", "multiple_pricing_indicator", "asc_group", "asc_effective_date",
            "mog_group", "mog_indicator", "mog_effective_date", "anesthesia_base_units")
_MISC = ("betos", "types_of_service")

#: change type -> the action codes (record layout §3.1) under which CMS announces that change.
#: B = admin + long description, F = admin field, P = payment, T = BETOS/TOS, S = short description.
EXPECTED_ACTIONS: dict[str, str] = {
    "added": "A",
    "reused": "AR",
    "reactivated": "R",
    "discontinued": "D",
    "long_description_changed": "CB",
    "short_description_changed": "SCB",
    "termination_date_changed": "D",
    **{f"{f}_changed": "PFB" for f in _PAYMENT},
    **{f"{f}_changed": "TFB" for f in _MISC},
}
for _field in TRACKED_FIELDS:
    EXPECTED_ACTIONS.setdefault(f"{_field}_changed", "FB")

CHANGE_TYPE_DESCRIPTIONS: dict[str, str] = {
    "added": "First appearance of the code in any published release.",
    "discontinued": "Termination date set (was blank in the previous release).",
    "dropped": "Present in the previous release, absent from this one.",
    "reactivated": "Back in force (termination date cleared, or back in the file) with the same "
    "add date and meaning: the same episode continues.",
    "reused": "Back after termination or absence with a new add date or a different long "
    "description: a new episode starts, the old meaning is kept in history.",
    **{f"{f}_changed": f"Value of {f} differs from the previous release"
       + (" (whitespace-only differences ignored)." if f in WHITESPACE_INSENSITIVE else ".")
       for f in TRACKED_FIELDS},
}
