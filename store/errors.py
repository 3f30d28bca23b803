"""The exceptions of inboxd, at the bottom so that every layer may import them."""


class InboxdError(Exception):
    """Root of every error inboxd raises on purpose."""


class ConfigError(InboxdError):
    """A problem the user must fix in the command line or the config file.

    Its text is one line that names the file, the key and the problem; the daemon prints
    it on stderr and exits with status 2.
    """


class SharedFault(Exception):
    """A resource every file needs cannot be written now; `check` names it for /health.

    Raised by the outbox, the state database and the sinks alike: the engine pauses on
    it, says why, and tries again (DESIGN: faults of the world never stop the daemon).
    """

    def __init__(self, check: str, reason: str) -> None:
        super().__init__(reason)
        self.check = check
        self.reason = reason


def reason_of(exc: BaseException, where: str) -> str:
    """`"<where>: <Type>: <text>"`, naming the path an OSError names."""
    from store.records import describe

    if isinstance(exc, OSError) and exc.strerror:
        return f"{where}: {type(exc).__name__}: {exc.strerror}"
    return f"{where}: {describe(exc)}"
