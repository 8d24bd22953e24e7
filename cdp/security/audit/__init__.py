"""Append-only audit log (`AuditLog`) chained by HMAC-SHA256, its head signed into a separate checkpoint
store (`AuditCheckpoints`) after every append; `verify()` names the first bad record. Local adapter:
SQLite + a JSON-lines checkpoint file; AWS adapter: DynamoDB (conditional, transactional appends) +
write-once S3 checkpoint objects. What both share is in `chained.py`."""

from cdp.security.audit.port import AuditIntegrityError, AuditLog, AuditRecord, VerifyResult

__all__ = ["AuditIntegrityError", "AuditLog", "AuditRecord", "VerifyResult"]
