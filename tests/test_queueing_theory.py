"""The queues against queueing theory: long Poisson runs with fixed seeds match analytic means.

Each run starts empty and serves a few hundred thousand customers at moderate load,
so the start-up bias and the sampling error of the mean are well under the 2% allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import simpy

from fogsim.sim.fifo import solve_fifo
from fogsim.sim.link import Link
from fogsim.sim.server import FOG_QUEUE_FULL, CloudServer, Server

pytestmark = pytest.mark.slow

CUSTOMERS = 400_000


def poisson_arrivals(seed: int, rate: float, n: int = CUSTOMERS) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).exponential(1 / rate, n))


def sojourns(
    env: simpy.Environment, arrivals: np.ndarray, send: Callable[[int], simpy.Event]
) -> np.ndarray:
    """Release customer ``i`` at ``arrivals[i]`` through ``send``; return time in system."""
    out = np.full(arrivals.size, np.nan)

    def feed():
        for i, at in enumerate(arrivals.tolist()):
            yield env.timeout(at - env.now)
            send(i).callbacks.append(lambda _e, i=i, at=at: out.__setitem__(i, env.now - at))

    env.process(feed())
    env.run()
    assert not np.isnan(out).any()
    return out


def erlang_c_sojourn(lam: float, mu: float, c: int) -> float:
    a = lam / mu
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    wait_prob = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return wait_prob / (c * mu - lam) + 1 / mu


def test_mm1_fifo_link():
    lam, capacity, mean_bits = 0.5, 1e6, 1e6  # mu = 1 transfer/s
    env = simpy.Environment()
    link = Link(env, "l", capacity, 0.0, "fifo")
    sizes = np.random.default_rng(11).exponential(mean_bits, CUSTOMERS)
    t = sojourns(env, poisson_arrivals(1, lam), lambda i: link.transmit(sizes[i]))
    assert t.mean() == pytest.approx(1 / (1 - lam), rel=0.02)


def test_mm1_cloud_server():
    lam, mu = 0.5, 1.0
    env = simpy.Environment()
    service = np.random.default_rng(12).exponential(1 / mu, CUSTOMERS).tolist()
    server = CloudServer(env, "c", 1, lambda batch: service.pop())
    t = sojourns(env, poisson_arrivals(2, lam), lambda i: server.submit(i))
    assert t.mean() == pytest.approx(1 / (mu - lam), rel=0.02)


def test_md1_pollaczek_khinchine():
    lam, service = 0.6, 1.0
    env = simpy.Environment()
    server = CloudServer(env, "c", 1, lambda batch: service)
    t = sojourns(env, poisson_arrivals(3, lam), lambda i: server.submit(i))
    rho = lam * service
    expected = service + rho * service / (2 * (1 - rho))
    assert t.mean() == pytest.approx(expected, rel=0.02)


def test_mmc_erlang_c():
    lam, mu, c = 2.4, 1.0, 4
    env = simpy.Environment()
    service = np.random.default_rng(14).exponential(1 / mu, CUSTOMERS).tolist()
    server = CloudServer(env, "c", c, lambda batch: service.pop())
    t = sojourns(env, poisson_arrivals(4, lam), lambda i: server.submit(i))
    assert t.mean() == pytest.approx(erlang_c_sojourn(lam, mu, c), rel=0.02)
    assert server.peak_busy_workers == c


def test_mm1_processor_sharing_link():
    lam, capacity, mean_bits = 0.5, 1e6, 1e6
    env = simpy.Environment()
    link = Link(env, "l", capacity, 0.0, "ps")
    sizes = np.random.default_rng(15).exponential(mean_bits, CUSTOMERS)
    t = sojourns(env, poisson_arrivals(5, lam), lambda i: link.transmit(sizes[i]))
    rho = lam * mean_bits / capacity
    assert t.mean() == pytest.approx(1 / (1 - lam), rel=0.02)
    # PS is fair to every size: E[T | x] = x / (C (1 - rho)), so T / x is flat in x.
    for low, high in [(0.2e6, 0.4e6), (1.0e6, 1.5e6), (3e6, 4e6)]:
        in_bin = (sizes >= low) & (sizes < high)
        ratio = t[in_bin].mean() / sizes[in_bin].mean()
        assert ratio == pytest.approx(1 / (capacity * (1 - rho)), rel=0.05)


def test_vectorised_fifo_mm1():
    lam, mu = 0.5, 1.0
    arrivals = poisson_arrivals(6, lam)
    service = np.random.default_rng(16).exponential(1 / mu, CUSTOMERS)
    result = solve_fifo(np.zeros(CUSTOMERS, dtype=int), arrivals, service)
    assert (result.end_s - arrivals).mean() == pytest.approx(1 / (mu - lam), rel=0.02)


def simpy_fifo(server: np.ndarray, arrival: np.ndarray, service: np.ndarray) -> np.ndarray:
    """An independent reference: one SimPy Resource per server, one process per request."""
    env = simpy.Environment()
    resources = {k: simpy.Resource(env, capacity=1) for k in np.unique(server).tolist()}
    end = np.full(arrival.size, np.nan)

    def customer(i: int, k: int, at: float, s: float):
        yield env.timeout(at)
        with resources[k].request() as turn:
            yield turn
            yield env.timeout(s)
            end[i] = env.now

    # Requests of one server start in order, so equal arrival times queue in input order.
    for i, (k, at, s) in enumerate(
        zip(server.tolist(), arrival.tolist(), service.tolist(), strict=True)
    ):
        env.process(customer(i, k, at, s))
    env.run()
    return end


def test_vectorised_fifo_equals_a_simpy_reference():
    rng = np.random.default_rng(17)
    server = np.sort(rng.integers(0, 40, 20_000))
    arrival = rng.random(server.size) * 2_000.0
    arrival = arrival[np.lexsort((arrival, server))]
    service = rng.exponential(3.0, server.size)
    service[rng.random(server.size) < 0.1] = 0.0
    result = solve_fifo(server, arrival, service)
    np.testing.assert_allclose(result.end_s, simpy_fifo(server, arrival, service), atol=1e-9)


# ---------------------------------------------------------------- the fog tier
def test_tandem_device_link_then_fog_server():
    """A device's own link (solved event-free, as the engine does) feeding a fog server
    (SimPy, each item carrying its own work): by Burke's theorem the departures of an M/M/1
    are Poisson, so the mean sojourn is the sum of the two M/M/1 means."""
    lam, mu_link, mu_fog = 0.5, 1.0, 0.8
    arrivals = poisson_arrivals(21, lam)
    link_s = np.random.default_rng(22).exponential(1 / mu_link, CUSTOMERS)
    link = solve_fifo(np.zeros(CUSTOMERS, dtype=int), arrivals, link_s)
    work = np.random.default_rng(23).exponential(1 / mu_fog, CUSTOMERS).tolist()
    env = simpy.Environment()
    fog = Server(env, "fog", 1, lambda _batch: 0.0)
    order = np.argsort(link.end_s, kind="stable")
    out = np.full(CUSTOMERS, np.nan)

    def feed():
        for i in order.tolist():
            yield env.timeout(link.end_s[i] - env.now)
            done = fog.submit(i, work[i])
            done.callbacks.append(lambda _e, i=i: out.__setitem__(i, env.now - arrivals[i]))

    env.process(feed())
    env.run()
    expected = 1 / (mu_link - lam) + 1 / (mu_fog - lam)
    assert out.mean() == pytest.approx(expected, rel=0.02)


def test_mmc_at_a_fog_node_with_work_per_item():
    lam, mu, c = 2.4, 1.0, 4
    env = simpy.Environment()
    work = np.random.default_rng(24).exponential(1 / mu, CUSTOMERS)
    server = Server(env, "fog", c, lambda _batch: 0.0, drop_reason=FOG_QUEUE_FULL)
    t = sojourns(env, poisson_arrivals(25, lam), lambda i: server.submit(i, work[i]))
    assert t.mean() == pytest.approx(erlang_c_sojourn(lam, mu, c), rel=0.02)


def test_ps_link_shared_by_two_routes():
    """Two routes' Poisson streams on one processor-sharing link: M/G/1-PS is insensitive to
    the size distribution, so each route's mean time is its mean size / (C (1 - rho))."""
    capacity = 1e6
    lam_a, mean_a = 0.3, 1e6  # exponential sizes
    lam_b, mean_b = 0.6, 0.5e6  # fixed sizes
    rho = (lam_a * mean_a + lam_b * mean_b) / capacity
    a, b = poisson_arrivals(26, lam_a), poisson_arrivals(27, lam_b)
    horizon = min(a[-1], b[-1])  # both streams over the same time
    a, b = a[a < horizon], b[b < horizon]
    arrivals = np.concatenate([a, b])
    route_b = np.concatenate([np.zeros(a.size, bool), np.ones(b.size, bool)])
    order = np.argsort(arrivals, kind="stable")
    arrivals, route_b = arrivals[order], route_b[order]
    sizes = np.where(route_b, mean_b, np.random.default_rng(28).exponential(mean_a, arrivals.size))
    env = simpy.Environment()
    link = Link(env, "shared", capacity, 0.0, "ps")
    t = sojourns(env, arrivals, lambda i: link.transmit(sizes[i]))
    assert t[~route_b].mean() == pytest.approx(mean_a / (capacity * (1 - rho)), rel=0.02)
    assert t[route_b].mean() == pytest.approx(mean_b / (capacity * (1 - rho)), rel=0.02)
