"""The streaming contract every stateful piece follows (DESIGN.md, "The streaming contract").

``update(item) -> list[out]`` returns only finished results; ``flush()`` returns what is
left at the end of the stream; ``reset()`` forgets all running state (after a gap).
Parameters are keyword-only, in physical units, validated at construction and stored
unchanged; running state is private. Three invariants are tested for every implementation:
causal (bounded look-ahead), chunk-invariant (any split gives the same output) and bounded
memory (buffers sized by parameters, never by stream length).
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)


class Streaming(Protocol, Generic[In, Out]):
    def update(self, item: In) -> list[Out]: ...

    def flush(self) -> list[Out]: ...

    def reset(self) -> None: ...


def require(cond: bool, message: str) -> None:
    """Validate a constructor parameter: raise ValueError(message) unless cond."""
    if not cond:
        raise ValueError(message)
