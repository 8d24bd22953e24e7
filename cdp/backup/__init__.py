"""Backup and restore of a home's platform state, encrypted under a recovery key kept outside the home."""
