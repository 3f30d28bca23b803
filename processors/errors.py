"""The exceptions of inboxd, re-exported from the bottom layer (`store.errors`)."""

from store.errors import ConfigError, InboxdError

__all__ = ["ConfigError", "InboxdError"]
