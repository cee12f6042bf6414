"""A piecewise-constant rate over time, and the bits it carries: what a varying link sends."""

from __future__ import annotations

import bisect
from collections.abc import Iterator


class RateFunction:
    """The rate ``rate_bps[i]`` from ``times_s[i]`` until the next change, read lazily from
    ``changes`` (``(time_s, rate_bps)`` pairs from time 0, the last rate holding for ever).

    It answers the two questions a link asks: how many bits fit between two times, and
    when ``bits`` started at a time are through. Both are exact for the piecewise rate.
    """

    def __init__(self, changes: Iterator[tuple[float, float]]) -> None:
        self._changes = changes
        t0, rate = next(changes)
        if t0 != 0.0:
            raise ValueError(f"a rate profile starts at time 0, not {t0!r}")
        self.times_s = [0.0]
        self.rates_bps = [float(rate)]
        self._bits = [0.0]  # bits carried from time 0 to each change
        self._ended = False

    def bits_between(self, start_s: float, end_s: float) -> float:
        """Bits a saturated link carries from ``start_s`` to ``end_s``."""
        return self._bits_at(end_s) - self._bits_at(start_s)

    def finish_s(self, start_s: float, bits: float) -> float:
        """When ``bits`` sent from ``start_s`` on, at the full rate, are through."""
        target = self._bits_at(start_s) + bits
        while not self._ended and self._bits[-1] <= target:
            self._extend()
        exact = bisect.bisect_left(self._bits, target)
        if exact < len(self._bits) and self._bits[exact] == target:
            return max(start_s, self.times_s[exact])  # through at a change, before any pause
        # The last change below the target starts a segment of positive rate (the last
        # segment, holding for ever, is positive too).
        i = exact - 1
        return max(start_s, self.times_s[i] + (target - self._bits[i]) / self.rates_bps[i])

    def rate_at(self, time_s: float) -> float:
        return self.rates_bps[self._index(time_s)]

    def _bits_at(self, time_s: float) -> float:
        i = self._index(time_s)
        return self._bits[i] + (time_s - self.times_s[i]) * self.rates_bps[i]

    def _index(self, time_s: float) -> int:
        while not self._ended and self.times_s[-1] <= time_s:
            self._extend()
        return bisect.bisect_right(self.times_s, time_s) - 1

    def _extend(self) -> None:
        try:
            t, rate = next(self._changes)
        except StopIteration:
            self._ended = True
            if not self.rates_bps[-1] > 0:
                raise ValueError("a rate profile must end on a positive rate") from None
            return
        if not t > self.times_s[-1] or not rate >= 0:
            raise ValueError(f"bad rate change ({t!r} s, {rate!r} bit/s) after {self.times_s[-1]}")
        self._bits.append(self._bits_at_last(t))
        self.times_s.append(float(t))
        self.rates_bps.append(float(rate))

    def _bits_at_last(self, time_s: float) -> float:
        return self._bits[-1] + (time_s - self.times_s[-1]) * self.rates_bps[-1]
