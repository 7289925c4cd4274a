"""Exit codes: the same for every command, documented in the README, never changed."""

OK = 0  # success
PROBLEMS_FOUND = 1  # the check ran and found problems
USAGE = 2  # usage error (bad option, bad date, bad URL)
CANNOT_RUN = 3  # unreachable, refused, misconfigured, lock held
INTERRUPTED = 130  # Ctrl-C / SIGTERM

# The one mapping from the library's error kinds (tacn.pipelines.errors: each class's ``kind``)
# to exit codes. A kind not listed is "could not run"; a subclass takes its nearest listed
# ancestor's code. Plain strings, so importing this imports no library module.
BY_KIND = {
    "usage_error": USAGE,
    "migration_refused": PROBLEMS_FOUND,  # a migration looked at the data and declined: data untouched
}


def for_kind(kind: str) -> int:
    return BY_KIND.get(kind, CANNOT_RUN)


def for_error(exc: BaseException) -> int:
    """The exit code of a typed library error, by the first listed kind along its class hierarchy."""
    for cls in type(exc).__mro__:
        kind = cls.__dict__.get("kind")
        if kind in BY_KIND:
            return BY_KIND[kind]
    return CANNOT_RUN
