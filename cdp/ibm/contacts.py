"""The bank's contact e-mails (`core_banking/contacts.csv`, header `User,Email`).

The public IBM users file has no e-mail; the core-banking copy the generator writes has one per user.
Real data has none: callers get None and carry on without e-mails.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pv

CONTACTS_FILE = Path("core_banking") / "contacts.csv"
CONTACTS_HEADER = ("User", "Email")
CONTACTS_SCHEMA = pa.schema([("user", pa.int32()), ("email", pa.string())])


class ContactsFormatError(ValueError):
    """The contacts file exists but is not `User,Email` with integer users."""


def read_contacts(source_dir: Path) -> pa.Table | None:
    """`user`, `email` from `<source_dir>/core_banking/contacts.csv`, or None when there is no such file."""
    path = Path(source_dir) / CONTACTS_FILE
    if not path.is_file():
        return None
    with path.open() as f:
        header = tuple(f.readline().rstrip("\r\n").split(","))
    if header != CONTACTS_HEADER:
        raise ContactsFormatError(f"{path.name}: expected header {','.join(CONTACTS_HEADER)}")
    try:
        table = pv.read_csv(
            path, convert_options=pv.ConvertOptions(column_types={"User": pa.int32(), "Email": pa.string()})
        )
    except pa.ArrowInvalid as e:
        # pyarrow's message quotes the offending value, which may be an e-mail: keep only the row number.
        raise ContactsFormatError(f"{path.name}: a row is not `<integer user>,<email>`") from e
    return pa.table({"user": table["User"], "email": table["Email"]}, schema=CONTACTS_SCHEMA)
