"""What CMS announced against what the history observed, per release and code, every disagreement
classified with a reason.

CMS announces each release's changes twice: the action code on every record, and the transaction
report shipped beside the file. A release with a report is reconciled against the report, one
without against its records' action codes. ``CLASSES`` is the ordered table of outcomes: the first
condition that holds names the row's ``reason``; ``unclassified`` is what none explains (a test
keeps it at zero on every real pair of consecutive releases).
"""

from __future__ import annotations

#: reason -> (condition on a row of the view's ``rows`` CTE, meaning). Order matters: first wins.
CLASSES: dict[str, tuple[str, str]] = {
    "agrees": (
        "announced IS NOT NULL AND announced <> 'N' AND len(observed) > 0 "
        "AND list_bool_and(list_transform(observed, t -> coalesce(contains(expected[t], "
        "announced), false)))",
        "The announced action announces every observed change (change_types).",
    ),
    "previous_not_loaded": (
        "NOT adjacent",
        "The release CMS compared with is not loaded (the first loaded release, or a gap "
        "before this one), so the observed changes span more than CMS announced.",
    ),
    "added_already_terminated": (
        "list_contains(observed, 'added') AND list_contains(observed, 'discontinued')",
        "First seen already terminated: CMS added and ended it between the two files and "
        "announces only one of the two.",
    ),
    "absent_from_previous_file": (
        "list_contains(observed, 'added')",
        "First seen in this release although CMS does not announce an add: it was added after "
        "the previous file was made (a mid-quarter add date) or left out of it.",
    ),
    "left_the_file": (
        "observed = ['dropped']",
        "The code left the file: a report lists only the codes of its file, so a removal is "
        "never announced (silent when the code had no termination date).",
    ),
    "report_omits_code": (
        "announced IS NULL",
        "The file changed a code the transaction report does not list at all.",
    ),
    "changed_under_action_n": (
        "announced = 'N'",
        "The file changed the code, but CMS announces no change (action N): a silent change.",
    ),
    "announced_not_observed": (
        "len(observed) = 0",
        "CMS announces a change the history does not see (e.g. white space only, which is "
        "not a change).",
    ),
    "cleared_on_discontinuation": (
        "announced = 'D' AND list_contains(observed, 'discontinued')",
        "Discontinued as announced, and CMS changed other fields at the same time (cross "
        "references, ASC group, descriptions).",
    ),
    "changed_beyond_action": (
        "list_bool_or(list_transform(observed, t -> coalesce(contains(expected[t], announced), "
        "false)))",
        "The action announces some of the observed changes; CMS changed more fields than it "
        "says.",
    ),
    "unclassified": ("true", "None of the reasons above explains the disagreement."),
}

#: Column -> comment of the view.
COLUMNS: dict[str, str] = {
    "release_id": "The release.",
    "previous_release_id": "The effective release the observed changes compare with.",
    "code": "The code.",
    "announced_in": "Where the announced action comes from: transaction_report (the release "
    "ships one) or record (the action code on the code's record).",
    "announced": "The action CMS announced (lookup_action_code); null when the report omits "
    "the code.",
    "reported_text": "The transaction report's wording of the change.",
    "record_action": "The action code on the code's record in this release (null: dropped).",
    "observed": "The change types the history observed for the code in this release (sorted; "
    "empty when none).",
    "agrees": "The announced action and the observed changes agree.",
    "reason": "agrees, or why they disagree (reconciliation_reasons: the first that holds).",
}


def reasons_markdown() -> str:
    """The reasons as a Markdown table, in the order they are tried."""
    rows = [f"| `{name}` | {meaning} |" for name, (_, meaning) in CLASSES.items()]
    return "| reason | meaning |\n|---|---|\n" + "\n".join(rows)


def reconciliation_sql() -> str:
    """One row per (release, code) CMS announced a change for or the history saw change."""
    reason = " ".join(f"WHEN {cond} THEN '{name}'" for name, (cond, _) in CLASSES.items())
    return f"""
    WITH report AS (
        SELECT release_id, code, string_agg(DISTINCT action, '' ORDER BY action) AS action,
               min(change_text) AS reported_text
        FROM transactions GROUP BY ALL),
    observed AS (
        SELECT release_id, code, list(DISTINCT change_type ORDER BY change_type) AS observed
        FROM code_changes GROUP BY ALL),
    keys AS (
        SELECT release_id, code FROM report WHERE action <> 'N'
        UNION SELECT release_id, code FROM code_changes
        UNION SELECT release_id, code FROM codes c
              WHERE action_code <> 'N'
                AND NOT EXISTS (SELECT 1 FROM report t WHERE t.release_id = c.release_id)),
    rows AS (
        SELECT k.release_id, p.release_id AS previous_release_id, k.code,
               CASE WHEN h.release_id IS NULL THEN 'record' ELSE 'transaction_report' END
                   AS announced_in,
               CASE WHEN h.release_id IS NULL THEN c.action_code ELSE t.action END
                   AS announced,
               t.reported_text, c.action_code AS record_action,
               coalesce(o.observed, []::VARCHAR[]) AS observed,
               -- the previous release is the one CMS compared with: the quarter before, or
               -- for an annual (Q1) file the previous year's annual file
               p.release_id IS NOT NULL AND (r.year * 4 + r.quarter = p.year * 4 + p.quarter + 1
                   OR (r.quarter = 1 AND p.quarter = 1 AND p.year = r.year - 1)) AS adjacent,
               (SELECT map(list(change_type), list(expected_action_codes))
                FROM change_types) AS expected
        FROM keys k
        JOIN releases r ON r.release_id = k.release_id AND r.effective
        LEFT JOIN releases p ON p.history_seq = r.history_seq - 1
        LEFT JOIN (SELECT DISTINCT release_id FROM report) h ON h.release_id = k.release_id
        LEFT JOIN report t ON t.release_id = k.release_id AND t.code = k.code
        LEFT JOIN observed o ON o.release_id = k.release_id AND o.code = k.code
        LEFT JOIN codes c ON c.release_id = k.release_id AND c.code = k.code)
    SELECT release_id, previous_release_id, code, announced_in, announced, reported_text,
           record_action, observed, reason = 'agrees' AS agrees, reason
    FROM (SELECT *, CASE {reason} END AS reason FROM rows)
    ORDER BY release_id, code"""
