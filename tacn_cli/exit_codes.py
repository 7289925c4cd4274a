"""Exit codes: the same for every command, documented in the README, never changed."""

OK = 0  # success
PROBLEMS_FOUND = 1  # the check ran and found problems
USAGE = 2  # usage error (bad option, bad date, bad URL)
CANNOT_RUN = 3  # unreachable, refused, misconfigured, lock held
INTERRUPTED = 130  # Ctrl-C / SIGTERM
