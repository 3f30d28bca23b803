"""inboxd installed as one package, `inboxd`, so that its folders never shadow (or are
shadowed by) other distributions' top-level modules such as python-daemon's `daemon`.

Inside, the folders import each other by their own names (`store`, `watcher`, ...), the
layout of the repository; importing `inboxd` puts the package's folder first on
`sys.path` of the inboxd process (and of its worker processes, which inherit it), and
nowhere else.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)


def main() -> int:
    """The `inboxd` console script: the daemon and its subcommands."""
    from daemon import main as run

    return run()
