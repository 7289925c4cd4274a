"""Versioned data migrations, applied with ``tacn migrate``."""
