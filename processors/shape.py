"""What a processor's own code proves about the shape of its output.

Output checking runs on every pair, so the router skips the checks a processor's
bytecode already answers. A processor is *literal* when it is a Python function (or a
bound method of one) that can only produce a bounded number of literal `(tag, line)`
tuples:

- a generator function without loops (no backward jump, no `yield from`) whose every
  `yield` is a tuple display of two items (`yield tag, line`) or a constant pair;
- a plain function whose every `return` is a constant tuple of pairs (or a global bound to
  one, such as `()`), or a one-pair display (`return ((tag, line),)`, `[(tag, line)]`).

For those the router still checks that the tag names a processor and that the line is a
`str`; everything else (the result's type, each item being a 2-tuple, `max_outputs`) is
true by construction. Any other processor goes through the fully checked path.
"""

from __future__ import annotations

import dis
import inspect
from collections.abc import Callable, Iterator
from types import CodeType, FunctionType, MethodType
from typing import Any

_JUMPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)
_DELEGATING = frozenset({"SEND", "GET_YIELD_FROM_ITER", "GET_AWAITABLE"})
_ONE_PAIR_CONTAINERS = frozenset({"BUILD_TUPLE", "BUILD_LIST"})


def is_literal(fn: Callable[..., Any], max_outputs: int) -> bool:
    """Whether `fn`'s code proves its output is at most `max_outputs` literal pairs."""
    func = fn.__func__ if isinstance(fn, MethodType) else fn
    if not isinstance(func, FunctionType):
        return False
    code = func.__code__
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        return False
    if inspect.isgeneratorfunction(func):
        return _is_literal_generator(code, max_outputs)
    return _is_literal_function(code, func.__globals__, max_outputs)


def _instructions(
    code: CodeType,
) -> Iterator[tuple[dis.Instruction, dis.Instruction | None, dis.Instruction | None]]:
    """Each instruction with the two before it (EXTENDED_ARG skipped)."""
    prev: dis.Instruction | None = None
    prev2: dis.Instruction | None = None
    for ins in dis.get_instructions(code):
        if ins.opname == "EXTENDED_ARG":
            continue
        yield ins, prev, prev2
        prev2, prev = prev, ins


def _is_literal_generator(code: CodeType, max_outputs: int) -> bool:
    yields = 0
    for ins, prev, _ in _instructions(code):
        if ins.opname in _DELEGATING:
            return False
        if ins.opcode in _JUMPS and isinstance(ins.argval, int) and ins.argval <= ins.offset:
            return False  # a loop: the number of yields is not bounded by the code
        if ins.opname == "YIELD_VALUE":
            if ins.is_jump_target or prev is None or not _is_pair_display(prev):
                return False
            yields += 1
    return yields <= max_outputs


def _is_literal_function(code: CodeType, globals_: dict[str, Any], max_outputs: int) -> bool:
    returns = 0
    for ins, prev, prev2 in _instructions(code):
        if ins.opname == "RETURN_CONST":
            if not _is_pair_constant(ins.argval, max_outputs):
                return False
            returns += 1
        elif ins.opname == "RETURN_VALUE":
            if ins.is_jump_target or prev is None:
                return False
            if not _returns_pairs(prev, prev2, globals_, max_outputs):
                return False
            returns += 1
    return returns > 0


def _returns_pairs(
    last: dis.Instruction,
    before: dis.Instruction | None,
    globals_: dict[str, Any],
    max_outputs: int,
) -> bool:
    """Whether the value `last` leaves (after `before`) is a proven sequence of pairs."""
    if last.opname == "LOAD_CONST":
        return _is_pair_constant(last.argval, max_outputs)
    if last.opname == "LOAD_GLOBAL":
        return _is_pair_constant(globals_.get(str(last.argval)), max_outputs)
    if last.opname in _ONE_PAIR_CONTAINERS and last.arg == 1 and not last.is_jump_target:
        return before is not None and _is_pair_display(before) and max_outputs >= 1
    return False


def _is_pair_display(ins: dis.Instruction) -> bool:
    """A tuple of two items built right here (`tag, line`), or a constant one."""
    if ins.opname == "BUILD_TUPLE":
        return ins.arg == 2
    if ins.opname == "LOAD_CONST":
        value = ins.argval
        return type(value) is tuple and len(value) == 2 and _all_str(value)
    return False


def _is_pair_constant(value: object, max_outputs: int) -> bool:
    return (
        type(value) is tuple
        and len(value) <= max_outputs
        and all(type(p) is tuple and len(p) == 2 and _all_str(p) for p in value)
    )


def _all_str(values: tuple[Any, ...]) -> bool:
    return all(type(v) is str for v in values)
