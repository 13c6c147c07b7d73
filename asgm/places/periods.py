"""Periods of detection layers: codes (AMW's ``202400``, ``202502``), labels (``2024``, ``2025Q2``), order and
ranges such as ``2018..2025Q3``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from asgm.errors import AsgmError

#: The label of detections that carry no period (an uploaded file without a period or year column).
ALL = "all"
_LABEL = re.compile(r"^(\d{4})(?:Q([1-4]))?$")


class PeriodError(AsgmError):
    """A period or range of periods that cannot be read or matches no detection period."""


def label(value: object) -> str:
    """The label of a period given as AMW's code (``202400`` -> ``2024``, ``202502`` -> ``2025Q2``), a year
    (``2024``) or a label (``2025Q3``); raises ``PeriodError`` for anything else."""
    text = str(value).strip()
    if re.fullmatch(r"\d+\.0", text):  # a year read from a float column
        text = text[:-2]
    if re.fullmatch(r"\d{6}", text):
        year, quarter = text[:4], int(text[4:])
        if quarter == 0:
            return year
        if 1 <= quarter <= 4:
            return f"{year}Q{quarter}"
    if _LABEL.match(text.upper()):
        return text.upper()
    raise PeriodError(f"{value!r} is not a period: use a year (2024), a quarter (2025Q3) or AMW's code (202502)")


def sort_key(period: str) -> tuple[int, int]:
    """Chronological order (``2024`` < ``2025Q2`` < ``2025Q3``); ``all`` last."""
    m = _LABEL.match(period)
    if m is None:
        return (10**6, 0)
    return (int(m.group(1)), int(m.group(2) or 0))


def ordered(periods: Iterable[str]) -> list[str]:
    """Distinct periods in chronological order."""
    return sorted(set(periods), key=sort_key)


def select(spec: str | None, available: Sequence[str]) -> list[str]:
    """The periods of ``available`` that ``spec`` names: None or '' = all; ``A..B`` = from A to B inclusive
    (either end may be left out); ``A,B,C`` = those. Refuses a spec that names no available period."""
    avail = ordered(available)
    if not spec or not spec.strip():
        return avail
    spec = spec.strip()
    if ".." in spec:
        lo_text, _, hi_text = spec.partition("..")
        lo = sort_key(label(lo_text)) if lo_text.strip() else (-1, 0)
        hi_label = label(hi_text) if hi_text.strip() else None
        hi = sort_key(hi_label) if hi_label else (10**6, 0)
        chosen = [p for p in avail if lo <= sort_key(p) <= hi]
    else:
        wanted = [label(s) for s in spec.split(",") if s.strip()]
        missing = [w for w in wanted if w not in avail]
        if missing:
            raise PeriodError(f"period(s) {', '.join(missing)} not in the detections; they have {', '.join(avail)}")
        chosen = [p for p in avail if p in wanted]
    if not chosen:
        raise PeriodError(f"--periods {spec} matches none of the detections' periods ({', '.join(avail)})")
    return chosen
