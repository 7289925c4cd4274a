"""The jobs: each module returns result objects and raises typed errors; none prints."""
