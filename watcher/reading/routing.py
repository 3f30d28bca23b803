"""What routing one run of lines takes and gives, shared by every way of routing."""

from __future__ import annotations

from collections.abc import Callable

from store.records import DeadLetter, SinkLines

# What routing a run gives: outbox lines, dead letters, and lines for each sink.
Routing = tuple[list[str], list[DeadLetter], SinkLines]
# Routing one run of lines: (lines, file shown, number of the first line).
RouteFn = Callable[[list[str], str, int], Routing]
