"""How deeply a JSON text nests, found without parsing it (so a hostile body never reaches a recursive
parser): one vectorised pass over the bytes, a megabyte at a time, that skips brackets inside strings."""

from __future__ import annotations

import numpy as np

CHUNK_BYTES = 1 << 20
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN_BRACKET, _OPEN_BRACE = ord("["), ord("{")
_CLOSE_BRACKET, _CLOSE_BRACE = ord("]"), ord("}")


def max_depth(text: bytes) -> int:
    """The deepest nesting of arrays and objects in `text` (0 for a scalar). Malformed text gets a
    number too (the parser refuses it afterwards); memory stays a few times one chunk."""
    depth = deepest = 0
    in_string = False
    backslashes = 0  # backslashes just before the chunk (their parity escapes its first byte)
    for start in range(0, len(text), CHUNK_BYTES):
        b = np.frombuffer(text, np.uint8, count=min(CHUNK_BYTES, len(text) - start), offset=start)
        is_backslash = b == _BACKSLASH
        if is_backslash.any() or backslashes:
            index = np.arange(b.size, dtype=np.int32)
            last_other = np.maximum.accumulate(np.where(is_backslash, -1, index))
            run = index - last_other  # backslashes ending at each byte (0 where it is none)
            run = np.where(last_other < 0, run + backslashes, run)  # a run from the previous chunk
            before = np.concatenate(([backslashes], run[:-1]))
            escaped = (before % 2) == 1
            backslashes = int(run[-1])
        else:
            escaped = np.zeros(b.size, dtype=bool)
        quotes = (b == _QUOTE) & ~escaped
        outside = (np.bitwise_xor.accumulate(quotes) ^ in_string) == 0
        steps = ((b == _OPEN_BRACKET) | (b == _OPEN_BRACE)).view(np.int8) - (
            (b == _CLOSE_BRACKET) | (b == _CLOSE_BRACE)
        ).view(np.int8)
        steps *= outside
        levels = depth + np.cumsum(steps, dtype=np.int32)
        if levels.size:
            deepest = max(deepest, int(levels.max()))
            depth = int(levels[-1])
        in_string = (not bool(outside[-1])) if outside.size else in_string
    return deepest
