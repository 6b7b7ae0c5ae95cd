"""Call records as CSV (RFC 4180), safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from voicemgmt.services.call_records import StoredCallRecord

CSV_COLUMNS = (
    "id_call",
    "id_appel",
    "date",
    "date_end",
    "direction",
    "caller_number",
    "service_number",
    "id_group",
    "id_op",
    "outcome",
    "ended_by",
    "disconnect_reason",
    "duration",
    "duration_ring",
    "duration_svi",
    "duration_wait",
    "duration_comm",
    "duration_hold",
    "post_appel",
    "operators_offered",
    "overflowed_from",
    "ticket_id",
    "variables",
)

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        text = ""
    elif isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def records_to_csv(records: Iterable[StoredCallRecord]) -> str:
    """RFC 4180 CSV with a header row; lists and ``variables`` as JSON text in their cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        row = record.to_json()
        writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
    return out.getvalue()
