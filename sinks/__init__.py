"""Where lines go: the outbox (`end`) and the `[sinks.NAME]` types, one module each,
behind one interface (sinks/base.py) and one registry (sinks/registry.py)."""
