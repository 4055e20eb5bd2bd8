"""A rate limit's window, and a request as counted in it: plain values, shared by every store
of counts (``service.rate_counts``, ``service.redis_counts``)."""

from __future__ import annotations

from dataclasses import dataclass

import limits


@dataclass(frozen=True)
class Window:
    """One limit: at most ``amount`` requests per window of ``seconds``."""

    amount: int
    seconds: int
    text: str  # "30 per 1 second", as a 429's detail names it
    suffix: str  # "30/1/second", the end of its counters' keys

    @classmethod
    def of(cls, item: limits.RateLimitItem) -> Window:
        return cls(
            amount=item.amount,
            seconds=item.get_expiry(),
            text=str(item),
            suffix=f"{item.amount}/{item.multiples}/{item.GRANULARITY.name}",
        )


def parse_windows(text: str) -> tuple[Window, ...]:
    """The limits of a setting ("600 per minute;30 per second"), shortest window first."""
    items = sorted(limits.parse_many(text), key=lambda item: item.get_expiry())
    # A limit written twice is one limit (counted twice, it would refuse at half its amount).
    return tuple({window.suffix: window for window in map(Window.of, items)}.values())


@dataclass(frozen=True)
class Tally:
    """A request counted: the window reported, its count with this request, and when it ends
    (seconds since the epoch)."""

    window: Window
    count: int
    reset: float

    @property
    def refused(self) -> bool:
        return self.count > self.window.amount

    @property
    def remaining(self) -> int:
        return max(0, self.window.amount - self.count)
