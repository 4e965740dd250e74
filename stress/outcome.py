"""From judged conversations to a table row: counts, latency percentiles, recovery time and
throughput, all measured the same way in every scenario.

Times come from the messages' own `created_at` (written by the functions on this machine), so
polling granularity does not blur them; recovery is measured from the moment the runner saw
the killed (or paused) process serve again to the last message of the scenario's conversations.
"""

from __future__ import annotations

import math

from stress.expect import Verdict
from stress.harness import Harness
from stress.table import Row

MAX_DETAILS = 5


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def conversation_row(
    scenario: str,
    verdicts: list[Verdict],
    h: Harness,
    started_at: float,
    serving_at: float | None = None,
) -> Row:
    """A row for conversations: lost or duplicated ones fail it, and so does any that did not
    end exact (its detail is noted)."""
    took = [v.took_s for v in verdicts if v.took_s is not None]
    finals = [v.final_at for v in verdicts if v.final_at is not None]
    last = max(finals) if finals else None
    ids = {v.tracked.conversation_id for v in verdicts}
    row = Row(
        scenario=scenario,
        total=len(verdicts),
        final=sum(v.final for v in verdicts),
        exact=sum(v.exact for v in verdicts),
        lost=sum(v.lost for v in verdicts),
        duplicated=sum(v.duplicated for v in verdicts),
        p50_s=percentile(took, 0.50),
        p95_s=percentile(took, 0.95),
    )
    if last is not None and last > started_at:
        row.per_s = h.handled(ids) / (last - started_at)
    if serving_at is not None and last is not None:
        row.recover_s = max(0.0, last - serving_at)
    letters = sum(v.letters for v in verdicts if v.exact)
    if letters:  # nothing was lost, but something was recorded as lost: a false alarm
        row.notes.append(f"{letters} dead letter(s) on conversations that ended exact")
    if row.lost or row.duplicated or row.exact != row.total:
        row.passed = False
        details = [v.detail for v in verdicts if v.detail]
        row.notes += details[:MAX_DETAILS]
        if len(details) > MAX_DETAILS:
            row.notes.append(f"... and {len(details) - MAX_DETAILS} more not exact")
    return row
