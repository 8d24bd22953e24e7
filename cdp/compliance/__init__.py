"""Controls a bank runs on its own data: the PII leak scan."""
