"""Fixing bad data without losing a record: backup, clean, restore, verify-fix, repair."""
