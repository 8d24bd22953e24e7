"""Signed checkpoints of the audit log's head: the port and its local-file and S3 adapters
(`Backends.audit_checkpoints` picks one)."""
