"""Two clocks: when CMS says a version of a code is in force (valid time), and which release said so
(knowledge time).

Valid time comes from CMS's own dates on the records (added, action effective, termination), not
from the quarter of the file that carried them, so a date is answered the same way whichever file
happened to be in force that day. Knowledge time is the effective release (``history_seq``): a
later release can show that a code was terminated, dropped or redefined earlier than the file in
force at the time said. Each version of ``code_history`` starts on ``valid_from_date`` (see
``VALID_FROM_BASES``) and ends on ``valid_to_date``, as known at a release ``k``: the earliest of
its own termination date, the episode's latest known termination date, the day before the next
known version starts, and, when the code left the file without a termination, the day before the
first release without it. ``versions_known_at`` writes that rule once; the rebuild applies it with
the latest release, the macros with any ``known_at``.
"""

from __future__ import annotations

#: Where a version's ``valid_from_date`` comes from (the first that applies), and what it means.
VALID_FROM_BASES: dict[str, str] = {
    "added_date": "The first version of an episode (a new code, a reused or a redefined one): "
    "CMS's add date.",
    "termination_date": "A discontinuation: the day after the termination date, so the version "
    "is never in force (it records that CMS ended the code).",
    "action_effective_date": "A change CMS dated: the record's action effective date, when it "
    "differs from the previous version's.",
    "release_start": "A change CMS did not date (same action effective date, often action N): "
    "the first day of the quarter of the first release that shows it, the earliest day known "
    "for it.",
}

#: The basis of a version starting on a row of ``flagged`` (history.py; ``p_*``: the previous
#: appearance of the code).
VALID_FROM_BASIS = """CASE
    WHEN prev_seq IS NULL OR event IN ('reused', 'redefined') THEN
      CASE WHEN added_date IS NULL THEN 'release_start' ELSE 'added_date' END
    WHEN event = 'discontinued' THEN 'termination_date'
    WHEN action_effective_date IS NOT NULL
         AND action_effective_date IS DISTINCT FROM p_action_effective
      THEN 'action_effective_date'
    ELSE 'release_start' END"""


def valid_from_date(row: str) -> str:
    """The day a version starting on ``row`` (of ``flagged``) is in force, by its basis."""
    return f"""CASE {row}.valid_from_basis
        WHEN 'added_date' THEN {row}.added_date
        WHEN 'termination_date' THEN {row}.termination_date + 1
        WHEN 'action_effective_date' THEN {row}.action_effective_date
        ELSE {row}.effective_from END"""


#: Columns of ``version_knowledge``: what does not depend on the release the answer is known at.
KNOWLEDGE_COLUMNS: dict[str, str] = {
    "code": "HCPCS code or modifier (code_history.code).",
    "version": "Its version (code_history.version).",
    "from_seq": "history_seq of the version's first release (known from then on).",
    "to_seq": "history_seq of the version's last release.",
    "next_seq": "history_seq of the first release of the code's next version; null if none.",
    "next_from": "valid_from_date of the code's next version.",
    "left_on": "When the code is absent from the release after to_seq: the day before it starts.",
    "later_terminations": "Termination dates of the later versions of the same episode, each "
    "with the history_seq that first showed it (a later release can end a version earlier).",
}


def knowledge_sql(source: str) -> str:
    """CREATE ``version_knowledge`` from the versions in ``source``: the facts the macros need to
    answer as any release knew, computed once so that no query needs a window."""
    return f"""
    CREATE TABLE version_knowledge AS
    WITH s AS (
        SELECT h.code, h.version, h.episode, h.termination_date, h.valid_from_date,
               f.history_seq AS from_seq, t.history_seq AS to_seq
        FROM {source} h
        JOIN releases f ON f.release_id = h.valid_from_release
        JOIN releases t ON t.release_id = h.valid_to_release),
    later AS (
        SELECT a.code, a.version,
               list({{'seq': b.from_seq, 'day': b.termination_date}} ORDER BY b.version)
                   AS later_terminations
        FROM s a JOIN s b ON b.code = a.code AND b.episode = a.episode
                         AND b.version > a.version AND b.termination_date IS NOT NULL
        GROUP BY ALL)
    SELECT s.code, s.version, s.from_seq, s.to_seq,
           lead(s.from_seq) OVER w AS next_seq, lead(s.valid_from_date) OVER w AS next_from,
           gone.effective_from - 1 AS left_on, later.later_terminations
    FROM s
    LEFT JOIN later ON later.code = s.code AND later.version = s.version
    LEFT JOIN releases gone ON gone.history_seq = s.to_seq + 1
    WINDOW w AS (PARTITION BY s.code ORDER BY s.version)
    ORDER BY s.code, s.version"""


def versions_known_at(source: str, k: str) -> str:
    """SELECT the versions of ``source`` (code_history's columns) known at history_seq ``k`` (an
    expression, evaluated once), with every column that depends on later releases as release
    ``k`` knew it, from ``version_knowledge``."""
    return f"""
    WITH k AS (SELECT {k} AS seq)
    SELECT v.* REPLACE (
        CASE WHEN n.to_seq > k.seq THEN kr.release_id ELSE v.valid_to_release END
            AS valid_to_release,
        CASE WHEN n.to_seq < k.seq THEN v.ended_in_release END AS ended_in_release,
        CASE WHEN n.to_seq < k.seq THEN v.end_reason END AS end_reason,
        CAST(least(n.to_seq, k.seq) - n.from_seq + 1 AS BIGINT) AS release_count,
        n.to_seq >= k.seq AS is_current,
        least(v.termination_date,
              list_min(list_transform(list_filter(n.later_terminations, x -> x.seq <= k.seq),
                                      x -> x.day)),
              CASE WHEN n.next_seq <= k.seq THEN n.next_from - 1 END,
              CASE WHEN n.to_seq < k.seq AND coalesce(n.next_seq > n.to_seq + 1, true)
                   THEN n.left_on END) AS valid_to_date)
    FROM {source} v
    JOIN version_knowledge n ON n.code = v.code AND n.version = v.version
    CROSS JOIN k
    JOIN releases kr ON kr.history_seq = k.seq
    WHERE n.from_seq <= k.seq"""


#: Macro -> (its definition, its comment). Dates outside what the loaded releases can answer are
#: refused with DuckDB's error(), never answered by extrapolation.
MACROS: dict[str, tuple[str, str]] = {
    "hcpcs_known_seq": (
        """(known_at) AS (coalesce(
            (SELECT CASE WHEN effective THEN history_seq
                    ELSE error('hcpcs: known_at ' || release_id || ' is superseded by '
                               || superseded_by || '; use that release id') END
             FROM releases
             WHERE release_id = coalesce(known_at, (SELECT release_id FROM releases
                                                    WHERE effective
                                                    ORDER BY history_seq DESC LIMIT 1))),
            error('hcpcs: known_at ' || known_at || ' is not a loaded release '
                  || '(SELECT release_id FROM releases lists them)')))""",
        "history_seq of the release known_at names (NULL: the latest effective release); an "
        "error for a release not loaded or superseded.",
    ),
    "hcpcs_covered": (
        """(d, known_at := NULL) AS (
            SELECT CASE
              WHEN CAST(d AS DATE) < first.effective_from THEN error(
                'hcpcs: ' || CAST(d AS DATE) || ' is before ' || first.effective_from
                || ', the first day the loaded releases cover (' || first.release_id
                || '); load an earlier release to ask about it')
              WHEN CAST(d AS DATE) > k.effective_to THEN error(
                'hcpcs: ' || CAST(d AS DATE) || ' is after ' || k.effective_to
                || ', the last day of ' || k.release_id || ', the release the answer is known '
                || 'at; load a later release (or pass a later known_at) to ask about it')
              ELSE true END
            FROM (SELECT * FROM releases WHERE history_seq = 1) first,
                 (SELECT * FROM releases WHERE history_seq = hcpcs_known_seq(known_at)) k)""",
        "True when the loaded releases, as known at known_at (default: the latest), can answer "
        "for date d: from the first day of the oldest effective release to the last day of the "
        "quarter of known_at. Otherwise an error saying which bound d is past.",
    ),
    "hcpcs_release_on": (
        """(d) AS (
            SELECT release_id FROM releases WHERE effective AND effective_from <= CAST(d AS DATE)
            ORDER BY history_seq DESC LIMIT 1)""",
        "The effective release in force on date d among the loaded ones: the latest that "
        "started on or before d (NULL before the first).",
    ),
    "hcpcs_versions": (
        f"""(known_at := NULL) AS TABLE
            {versions_known_at("code_history", "hcpcs_known_seq(known_at)")}""",
        "code_history as release known_at (default: the latest) knew it: only the versions it "
        "had seen, with valid_to_date, valid_to_release, ended_in_release, end_reason, "
        "release_count and is_current as it knew them (unordered: add ORDER BY code, version).",
    ),
    "hcpcs_as_of": (
        """(d, known_at := NULL) AS TABLE
            SELECT * FROM hcpcs_versions(known_at := known_at)
            WHERE hcpcs_covered(d, known_at := known_at)
              AND valid_from_date <= CAST(d AS DATE)
              AND (valid_to_date IS NULL OR valid_to_date >= CAST(d AS DATE))
            ORDER BY kind DESC, code""",
        "Codes in force on date d by CMS's own dates (valid time), as the latest release knows "
        "them, or as release known_at knew them: one version per code, the one in force that "
        "day. Dates the loaded releases cannot answer are an error (see hcpcs_covered).",
    ),
    "hcpcs_as_published": (
        """(d) AS TABLE
            SELECT * FROM codes
            WHERE hcpcs_covered(d)
              AND release_id = hcpcs_release_on(d)
              AND added_date <= CAST(d AS DATE)
              AND (termination_date IS NULL OR termination_date >= CAST(d AS DATE))
            ORDER BY kind DESC, code""",
        "What the file in force on date d said (hcpcs_release_on(d)): its codes added on or "
        "before d and not terminated before d, with every field as that file had it.",
    ),
}

