"""A network link shared by transfers: exact processor sharing or FIFO, plus propagation."""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Literal

import simpy
from simpy.events import NORMAL

from fogsim.sim.ratefn import RateFunction

Discipline = Literal["ps", "fifo"]


class Delivery(simpy.Event):
    """Succeeds when a transfer's last bit reaches the far end.

    Its value is the time serialization ended: the sender was transmitting until then,
    from ``started_s`` on (FIFO: when its turn came; processor sharing: at once).
    """

    started_s: float = math.nan

    def arrive_after(self, delay_s: float, sent_s: float) -> None:
        # Trigger with a delay, as simpy.Timeout does: one event per transfer,
        # not a serialization event plus a propagation timeout.
        self._ok = True
        self._value = sent_s
        self.env.schedule(self, NORMAL, delay_s)


class Link:
    """A link of ``bandwidth_bps`` and one-way ``delay_s`` shared by concurrent transfers.

    ``"ps"`` (processor sharing) splits the capacity equally among the transfers
    in progress, exactly: a virtual clock counts the bits each active transfer
    has received, every transfer finishes when the clock reaches its finish tag,
    and only the next completion is ever scheduled. ``"fifo"`` sends one
    transfer at a time at full rate, in arrival order.

    With a ``rate`` function the capacity follows it over time (``bandwidth_bps`` is
    then only the nominal rate): both disciplines stay exact, since the bits a transfer
    gets between two instants are the integral of the rate (see ``RateFunction``).
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        bandwidth_bps: float,
        delay_s: float,
        discipline: Discipline = "ps",
        rate: RateFunction | None = None,
    ) -> None:
        if not (bandwidth_bps > 0 and math.isfinite(bandwidth_bps)):
            # With a rate function it is still the positive nominal rate that counters report.
            raise ValueError(f"link {name!r}: bandwidth must be positive, got {bandwidth_bps!r}")
        if not (delay_s >= 0 and math.isfinite(delay_s)):
            raise ValueError(f"link {name!r}: delay must be non-negative, got {delay_s!r}")
        if discipline not in ("ps", "fifo"):
            raise ValueError(f"link {name!r}: discipline must be 'ps' or 'fifo': {discipline!r}")
        self.env = env
        self.name = name
        self.bandwidth_bps = float(bandwidth_bps)
        self.delay_s = float(delay_s)
        self.discipline = discipline
        self.rate = rate
        self.peak_concurrency = 0
        self._bits_done = 0.0
        self._done = 0
        self._zero_size_done = 0
        self._send = self._send_ps if discipline == "ps" else self._send_fifo
        # Processor sharing: heap of (finish tag, sequence, bits, delivery).
        self._flows: list[tuple[float, int, float, Delivery]] = []
        self._sequence = 0
        self._virtual_bits = 0.0
        self._virtual_at_s = 0.0
        self._wakeup_pending = False
        self._wakeup_at_s = 0.0
        self._generation = 0
        self._busy_s = 0.0
        self._busy_since_s = 0.0
        # FIFO: finish times are known on arrival; (end, bits) of unfinished transfers.
        self._fifo_pending: deque[tuple[float, float]] = deque()
        self._fifo_free_at_s = 0.0
        self._fifo_work_s = 0.0

    def transmit(self, bits: float) -> Delivery:
        """Send ``bits``; the returned event succeeds when the last bit arrives."""
        if not (bits >= 0 and math.isfinite(bits)):
            raise ValueError(f"link {self.name!r}: transfer size must be >= 0 bits, got {bits!r}")
        done = Delivery(self.env)
        if bits == 0:
            self._zero_size_done += 1
            done.started_s = self.env.now
            done.arrive_after(self.delay_s, self.env.now)
        else:
            self._send(float(bits), done)
        return done

    @property
    def active(self) -> int:
        """Transfers being serialized now."""
        if self.discipline == "ps":
            return len(self._flows)
        self._settle_fifo()
        return len(self._fifo_pending)

    @property
    def bits_carried(self) -> float:
        """Bits of the transfers whose serialization has finished."""
        if self.discipline == "fifo":
            self._settle_fifo()
        return self._bits_done

    @property
    def transfers_done(self) -> int:
        """Transfers whose serialization has finished, zero-size ones included."""
        if self.discipline == "fifo":
            self._settle_fifo()
        return self._done + self._zero_size_done

    @property
    def busy_time_s(self) -> float:
        """Time so far during which at least one transfer was being serialized."""
        now = self.env.now
        if self.discipline == "fifo":
            return self._fifo_work_s - max(0.0, self._fifo_free_at_s - now)
        return self._busy_s + (now - self._busy_since_s if self._flows else 0.0)

    # Processor sharing ------------------------------------------------------

    def _send_ps(self, bits: float, done: Delivery) -> None:
        now = self.env.now
        if self._flows:
            self._advance(now)
        else:
            self._busy_since_s = now
            self._virtual_bits = 0.0
            self._virtual_at_s = now
        self._sequence += 1
        done.started_s = now
        tag = self._virtual_bits + bits
        heapq.heappush(self._flows, (tag, self._sequence, bits, done))
        self.peak_concurrency = max(self.peak_concurrency, len(self._flows))
        # The arrival delays every other completion, so a pending wake-up is early
        # or on time for them (it re-checks when it fires); only a newcomer that
        # would finish before it needs a new one.
        if not self._wakeup_pending or (
            self._flows[0][1] == self._sequence
            and self._through_s(now, bits * len(self._flows)) < self._wakeup_at_s
        ):
            self._schedule_wakeup()

    def _advance(self, now: float) -> None:
        """Move the virtual clock: each active transfer got ``C / n`` bits per second."""
        if self.rate is None:
            self._virtual_bits += (now - self._virtual_at_s) * self.bandwidth_bps / len(self._flows)
        else:
            capacity = self.rate.bits_between(self._virtual_at_s, now)
            self._virtual_bits += capacity / len(self._flows)
        self._virtual_at_s = now

    def _through_s(self, start_s: float, bits: float) -> float:
        """When ``bits`` at the link's full capacity from ``start_s`` on are through."""
        if self.rate is None:
            return start_s + bits / self.bandwidth_bps
        return self.rate.finish_s(start_s, bits)

    def _schedule_wakeup(self) -> None:
        remaining_bits = self._flows[0][0] - self._virtual_bits
        if self.rate is None:
            delay = max(0.0, remaining_bits * len(self._flows) / self.bandwidth_bps)
        else:
            delay = self.rate.finish_s(self.env.now, max(0.0, remaining_bits) * len(self._flows))
            delay -= self.env.now
        # SimPy cannot cancel a timeout: a replaced wake-up is recognised as stale
        # by its generation number and ignored.
        self._generation += 1
        self._wakeup_pending = True
        self._wakeup_at_s = self.env.now + delay
        self.env.timeout(delay, self._generation).callbacks.append(self._wake)

    def _wake(self, event: simpy.Event) -> None:
        if event.value != self._generation:
            return
        self._wakeup_pending = False
        now = self.env.now
        self._advance(now)
        flows = self._flows
        while flows:
            tag = flows[0][0]
            left_bits = (tag - self._virtual_bits) * len(flows)
            # Due when what is left cannot move the clock any more (float resolution).
            if self._through_s(now, left_bits) > now:
                break
            _, _, bits, done = heapq.heappop(flows)
            self._virtual_bits = max(self._virtual_bits, tag)
            self._bits_done += bits
            self._done += 1
            done.arrive_after(self.delay_s, now)
        if flows:
            self._schedule_wakeup()
        else:
            self._busy_s += now - self._busy_since_s

    # FIFO -------------------------------------------------------------------

    def _send_fifo(self, bits: float, done: Delivery) -> None:
        now = self.env.now
        self._settle_fifo()
        done.started_s = max(now, self._fifo_free_at_s)
        if self.rate is None:
            serialize_s = bits / self.bandwidth_bps
            end = done.started_s + serialize_s
        else:
            end = self.rate.finish_s(done.started_s, bits)
            serialize_s = end - done.started_s
        self._fifo_free_at_s = end
        self._fifo_work_s += serialize_s
        self._fifo_pending.append((end, bits))
        self.peak_concurrency = max(self.peak_concurrency, len(self._fifo_pending))
        done.arrive_after(end - now + self.delay_s, end)

    def _settle_fifo(self) -> None:
        """Count the transfers that finished serializing by now."""
        pending, now = self._fifo_pending, self.env.now
        while pending and pending[0][0] <= now:
            self._bits_done += pending.popleft()[1]
            self._done += 1
