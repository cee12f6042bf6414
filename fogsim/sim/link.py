"""A network link shared by transfers: exact processor sharing or FIFO, plus propagation."""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Generator
from typing import Any, Literal

import simpy
from simpy.events import NORMAL

from fogsim.sim.failures import LOST, PAUSED, RESTARTED, WORK, Availability
from fogsim.sim.ratefn import RateFunction

Discipline = Literal["ps", "fifo"]


class Delivery(simpy.Event):
    """Succeeds when a transfer's last bit reaches the far end.

    Its value is the time serialization ended: the sender was transmitting until then,
    from ``started_s`` on (FIFO: when its turn came; processor sharing: at once).
    ``hit`` says what a failure of the link did to it: ``""``, ``"paused"``,
    ``"restarted"`` or ``"lost"`` (it then succeeds when the link failed, undelivered).
    """

    started_s: float = math.nan
    hit: str = ""

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

    With ``up`` (the link's :class:`Availability`; ``rate`` is then 0 while it is down)
    the transfers in progress when it fails are, as ``work`` says, resumed, restarted
    from their first bit once it is up, or lost.

    ``withdraw`` takes a transfer back before its last bit is sent (a moving device's
    request abandoned at a handover); a FIFO link allows it only if ``retractable``, where
    it delivers by timers it can move, so the transfers behind move up.
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        bandwidth_bps: float,
        delay_s: float,
        discipline: Discipline = "ps",
        rate: RateFunction | None = None,
        up: Availability | None = None,
        work: str = "resume",
        retractable: bool = False,
    ) -> None:
        if not (bandwidth_bps > 0 and math.isfinite(bandwidth_bps)):
            # With a rate function it is still the positive nominal rate that counters report.
            raise ValueError(f"link {name!r}: bandwidth must be positive, got {bandwidth_bps!r}")
        if not (delay_s >= 0 and math.isfinite(delay_s)):
            raise ValueError(f"link {name!r}: delay must be non-negative, got {delay_s!r}")
        if discipline not in ("ps", "fifo"):
            raise ValueError(f"link {name!r}: discipline must be 'ps' or 'fifo': {discipline!r}")
        if work not in WORK:
            raise ValueError(f"link {name!r}: work must be one of {WORK}, got {work!r}")
        if up is not None and rate is None:
            raise ValueError(f"link {name!r}: a link that fails needs its rate with the outages")
        self.env = env
        self.name = name
        self.bandwidth_bps = float(bandwidth_bps)
        self.delay_s = float(delay_s)
        self.discipline = discipline
        self.rate = rate
        self.up = up
        self.work = work
        self.lost = 0
        self.withdrawn = 0
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
        # FIFO: finish times are known on arrival; (end, bits, delivered) of unfinished
        # transfers.
        self._fifo_pending: deque[tuple[float, float, bool]] = deque()
        self._fifo_free_at_s = 0.0
        self._fifo_work_s = 0.0
        # FIFO transfers that may be withdrawn (``retractable``): those not yet through, in
        # order; each delivered by a timer that a withdrawal ahead of it makes stale.
        self.retractable = retractable
        self._fifo_queue: deque[_Queued] = deque()
        if up is not None and discipline == "ps":
            env.process(self.fail())

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

    def fail(self) -> Generator[simpy.Event, Any, None]:
        """At each failure, pause, restart or lose the transfers in progress."""
        assert self.up is not None
        env, up = self.env, self.up
        down = up.next_down_s(0.0)
        while math.isfinite(down):
            yield env.timeout(down - env.now)
            if self._flows:
                self._advance(env.now)
                {"resume": self._pause, "restart": self._restart, "lost": self._lose}[
                    self.work
                ]()
            down = up.next_down_s(up.up_s(down))

    def _pause(self) -> None:
        for *_, done in self._flows:
            done.hit = done.hit or PAUSED

    def _restart(self) -> None:
        """Every transfer in progress starts again from its first bit."""
        virtual = self._virtual_bits
        flows = [(virtual + bits, seq, bits, done) for _, seq, bits, done in self._flows]
        for *_, done in flows:
            done.hit = RESTARTED
        heapq.heapify(flows)
        self._flows = flows
        self._schedule_wakeup()

    def _lose(self) -> None:
        """Every transfer in progress ends undelivered, now."""
        now = self.env.now
        for *_, done in self._flows:
            done.hit = LOST
            done.arrive_after(0.0, now)
        self.lost += len(self._flows)
        self._flows = []
        self._generation += 1  # the pending wake-up is stale
        self._wakeup_pending = False
        self._busy_s += now - self._busy_since_s

    def withdraw(self, done: Delivery) -> bool:
        """Stop serializing the transfer ``done`` stands for, now: its bits so far are wasted,
        the others share the link without it (FIFO: those behind it move up), and ``done``
        never succeeds. False where it is no longer being serialized (its last bit is sent):
        nothing to stop. A FIFO link must be ``retractable``.
        """
        if self.discipline == "fifo":
            return self._withdraw_fifo(done)
        flows = self._flows
        index = next((i for i, flow in enumerate(flows) if flow[3] is done), None)
        if index is None:
            return False
        now = self.env.now
        self._advance(now)  # at the share the transfer still had
        flows[index] = flows[-1]
        flows.pop()
        heapq.heapify(flows)
        self.withdrawn += 1
        if flows:
            self._schedule_wakeup()  # the others now finish sooner
        else:
            self._generation += 1  # the pending wake-up is stale
            self._wakeup_pending = False
            self._busy_s += now - self._busy_since_s
        return True

    # FIFO -------------------------------------------------------------------

    def _send_fifo(self, bits: float, done: Delivery) -> None:
        now = self.env.now
        self._settle_fifo()
        done.started_s = max(now, self._fifo_free_at_s)
        if self.rate is None:
            serialize_s = bits / self.bandwidth_bps
            end = done.started_s + serialize_s
        elif self.up is None:
            end = self.rate.finish_s(done.started_s, bits)
            serialize_s = end - done.started_s
        else:
            done.started_s, end, done.hit = self._fifo_attempt(done.started_s, bits)
            serialize_s = end - done.started_s
        self._fifo_free_at_s = end
        self._fifo_work_s += serialize_s
        delivered = done.hit != LOST
        self._fifo_pending.append((end, bits, delivered))
        self.peak_concurrency = max(self.peak_concurrency, len(self._fifo_pending))
        if self.retractable:
            if not delivered:
                self.lost += 1
            queue = self._fifo_queue
            while queue and queue[0].end_s <= now:
                queue.popleft()  # through: no longer withdrawable
            entry = _Queued(now, bits, done, end)
            queue.append(entry)
            self._deliver(entry)
        elif delivered:
            done.arrive_after(end - now + self.delay_s, end)
        else:
            self.lost += 1
            done.arrive_after(end - now, end)

    def _deliver(self, entry: _Queued) -> None:
        """Succeed the entry's delivery when it arrives, unless its times change first."""
        entry.token += 1
        token, done, end = entry.token, entry.done, entry.end_s
        delay = end - self.env.now + (self.delay_s if done.hit != LOST else 0.0)
        timer = self.env.timeout(delay)
        timer.callbacks.append(lambda _e: token == entry.token and done.succeed(end))

    def _withdraw_fifo(self, done: Delivery) -> bool:
        if not self.retractable:
            raise ValueError(f"link {self.name!r}: a FIFO link withdraws only if retractable")
        now = self.env.now
        self._settle_fifo()
        queue = self._fifo_queue
        while queue and queue[0].end_s <= now:
            queue.popleft()  # through
        entry = next((e for e in queue if e.done is done), None)
        if entry is None:
            return False
        queue.remove(entry)
        entry.token += 1  # its delivery is stale
        self.withdrawn += 1
        if done.hit == LOST:
            self.lost -= 1
        free = max(now, done.started_s)
        self._fifo_work_s -= entry.end_s - free  # the part it will not take
        for later in queue:
            if later.end_s <= free:
                continue  # ahead of it
            before = later.end_s - later.done.started_s
            old_hit = later.done.hit
            later.done.hit = ""
            start, end = self._fifo_times(max(later.queued_s, free), later.bits, later.done)
            later.done.started_s, later.end_s = start, end
            self._fifo_work_s += (end - start) - before
            self.lost += (later.done.hit == LOST) - (old_hit == LOST)
            self._deliver(later)
            free = end
        self._fifo_free_at_s = max(free, now) if not queue else queue[-1].end_s
        self._fifo_pending = deque((e.end_s, e.bits, e.done.hit != LOST) for e in queue)
        return True

    def _fifo_times(self, start_s: float, bits: float, done: Delivery) -> tuple[float, float]:
        """When a FIFO transfer whose turn comes at ``start_s`` begins and ends (and in
        ``done.hit``, what failures did to it), as ``_send_fifo`` has it."""
        if self.rate is None:
            return start_s, start_s + bits / self.bandwidth_bps
        if self.up is None:
            return start_s, self.rate.finish_s(start_s, bits)
        began, end, done.hit = self._fifo_attempt(start_s, bits)
        return began, end

    def _fifo_attempt(self, start_s: float, bits: float) -> tuple[float, float, str]:
        """A transfer whose turn comes at ``start_s`` on a link that fails: when it begins,
        when it ends (delivered, or lost at a failure), and what failures did to it."""
        assert self.rate is not None and self.up is not None
        rate, up = self.rate, self.up
        if self.work == "resume":
            end = rate.finish_s(start_s, bits)
            return start_s, end, PAUSED if up.next_down_s(start_s) < end else ""
        # A transfer that waits out an outage has not begun: it begins once the link is up.
        began = attempt = up.up_s(start_s)
        hit = ""
        while True:
            end, down = rate.finish_s(attempt, bits), up.next_down_s(attempt)
            if end <= down:
                return began, end, hit
            if self.work == "lost":
                return began, down, LOST
            attempt, hit = up.up_s(down), RESTARTED

    def _settle_fifo(self) -> None:
        """Count the transfers that finished serializing by now."""
        pending, now = self._fifo_pending, self.env.now
        while pending and pending[0][0] <= now:
            _, bits, delivered = pending.popleft()
            if delivered:
                self._bits_done += bits
                self._done += 1


class _Queued:
    """A transfer on a retractable FIFO link: when it came, its size, its delivery, when it
    ends, and the token its delivery timer must still hold."""

    __slots__ = ("queued_s", "bits", "done", "end_s", "token")

    def __init__(self, queued_s: float, bits: float, done: Delivery, end_s: float) -> None:
        self.queued_s, self.bits, self.done, self.end_s, self.token = (
            queued_s, bits, done, end_s, 0
        )
