"""One module per command; each exposes ``register(app)`` and imports nothing heavy at import time."""
