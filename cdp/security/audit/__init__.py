"""Append-only audit log (`AuditLog`) chained by HMAC-SHA256, its head signed into a separate checkpoint
store (`AuditCheckpoints`) after every append; `verify()` names the first bad record. Local adapter:
SQLite + a JSON-lines checkpoint file; AWS checkpoints: write-once S3 objects."""

from cdp.security.audit.port import AuditIntegrityError, AuditLog, AuditRecord, VerifyResult

__all__ = ["AuditIntegrityError", "AuditLog", "AuditRecord", "VerifyResult"]
