"""The record contract: what a quote document is and what a valid trade_date is.

Imports nothing of tacn's own packages and nothing heavy at import time.
"""
