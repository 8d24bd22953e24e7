"""Append-only, hash-chained audit log (`AuditLog`) with `verify()`; local adapter: SQLite."""

from cdp.security.audit.port import AuditLog, AuditRecord, VerifyResult

__all__ = ["AuditLog", "AuditRecord", "VerifyResult"]
