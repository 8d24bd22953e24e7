"""The bank's contact e-mails (`core_banking/contacts.csv`, header `User,Email`).

The public IBM users file has no e-mail; the core-banking copy the generator writes has one per user.
Real data has none: callers get None and carry on without e-mails. A row that is not `<user>,<e-mail>`
goes to the quarantine with its file, line, field and reason (never its text: it is personal data); the
other rows load. A file that is not this file at all (header, encoding) is refused with a one-line error.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pyarrow as pa

from cdp.ibm.quarantine import Quarantine
from cdp.ibm.rows import SourceFormatError, check_header, check_utf8

CONTACTS_FILE = Path("core_banking") / "contacts.csv"
CONTACTS_HEADER = ("User", "Email")
CONTACTS_SCHEMA = pa.schema([("user", pa.int32()), ("email", pa.string())])
_USER = re.compile(r"^[0-9]{1,9}$")
_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")


class ContactsFormatError(SourceFormatError):
    """The contacts file exists but is not a `User,Email` file."""


def read_contacts(source_dir: Path, quarantine: Quarantine) -> pa.Table | None:
    """`user`, `email` from `<source_dir>/core_banking/contacts.csv`, or None when there is no such file.

    Bad rows (wrong column count, a user that is not an integer, an e-mail that is not one, a user twice)
    are quarantined under `core_banking/contacts.csv` and skipped."""
    path = Path(source_dir) / CONTACTS_FILE
    if not path.is_file():
        return None
    check_header(path, CONTACTS_HEADER, quote_found=False)
    check_utf8(path)
    name = CONTACTS_FILE.as_posix()
    stats = quarantine.stats_for(name)
    users: list[int] = []
    emails: list[str] = []
    first_line: dict[int, int] = {}
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        next(reader, None)  # the header, checked above
        for row in reader:
            line = reader.line_num
            problem = _row_problem(row, first_line)
            if problem is not None:
                field, reason = problem
                quarantine.add(name, line, field, reason, None)
                stats.add(0, 1)
                continue
            user = int(row[0])
            first_line[user] = line
            users.append(user)
            emails.append(row[1])
            stats.add(1, 0)
    return pa.table({"user": pa.array(users, pa.int32()), "email": emails}, schema=CONTACTS_SCHEMA)


def _row_problem(row: list[str], first_line: dict[int, int]) -> tuple[str | None, str] | None:
    """(field, reason) of a row that cannot load, or None; reasons never quote the row's values."""
    if not row or row == [""]:
        return None, "empty line"
    if len(row) != len(CONTACTS_HEADER):
        return None, f"expected {len(CONTACTS_HEADER)} columns, found {len(row)}"
    if not _USER.match(row[0]):
        return "User", "not a non-negative integer"
    if not _EMAIL.match(row[1]):
        return "Email", "not an e-mail address"
    if int(row[0]) in first_line:
        return "User", f"user listed twice (first on line {first_line[int(row[0])]})"
    return None
