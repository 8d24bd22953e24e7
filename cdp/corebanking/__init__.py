"""Core banking: loading the system of record (the OLTP store) from the IBM files."""
