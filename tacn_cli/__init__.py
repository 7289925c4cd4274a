"""tacn: the command-line face of the toolkit (options, rendering, exit codes, settings)."""

__version__ = "0.1.0"
