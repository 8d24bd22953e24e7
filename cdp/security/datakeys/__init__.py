"""Per-customer wrapped data keys (`DataKeyStore`): SQLite locally, DynamoDB on AWS."""

from cdp.security.datakeys.port import DataKeyStore

__all__ = ["DataKeyStore"]
