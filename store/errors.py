"""The exceptions of inboxd, at the bottom so that every layer may import them."""


class InboxdError(Exception):
    """Root of every error inboxd raises on purpose."""


class ConfigError(InboxdError):
    """A problem the user must fix in the command line or the config file.

    Its text is one line that names the file, the key and the problem; the daemon prints
    it on stderr and exits with status 2.
    """
