"""Core-banking OLTP store: the port (`OltpStore`) and its SQLite (local) and DynamoDB (AWS) adapters."""

from cdp.oltp.erasures import LEGAL_HOLD_PURPOSE, Erasure
from cdp.oltp.ids import transaction_id
from cdp.oltp.port import Counts, OltpStore
from cdp.oltp.records import CARD, CUSTOMER, TRANSACTION, RecordError, rows_from_table

__all__ = [
    "CARD",
    "CUSTOMER",
    "LEGAL_HOLD_PURPOSE",
    "TRANSACTION",
    "Counts",
    "Erasure",
    "OltpStore",
    "RecordError",
    "rows_from_table",
    "transaction_id",
]
