"""The YAFS offload workload as a plain per-message SimPy model: a reference
implementation for ``benchmarks/bench_peer.py``, written the way YAFS builds its
simulations (a source process per device, a process per message, each link and the
server a ``simpy.Resource`` held one message at a time). It is not YAFS, which is not on
PyPI; it is the same model as ``scenarios/peer-offload.yaml`` (FIFO links that are held
while the bits go out, then a propagation delay that holds nothing; a single FIFO
server at a fixed time per request; no answer), so its latencies can be checked
against fogsim's.

    python benchmarks/peers/simpy_offload.py --devices 10000 --duration 10

Prints one JSON line: requests generated, requests finished, mean latency, CPU and wall
seconds of the run (building the model included, imports not), and the peak RSS.
"""

from __future__ import annotations

import random

import simpy
from peer_cli import Workload, main  # benchmarks/peers/, beside this script


def run(w: Workload) -> dict[str, float]:
    env = simpy.Environment()
    draw = random.Random(w.seed)
    bits = w.bits
    uplinks = [simpy.Resource(env, capacity=1) for _ in range(w.devices)]
    backhauls = [simpy.Resource(env, capacity=1) for _ in range(w.gateways)]
    server = simpy.Resource(env, capacity=1)
    latencies: list[float] = []
    generated = 0

    def message(device: int, born: float):
        with uplinks[device].request() as turn:
            yield turn
            yield env.timeout(bits / w.uplink_bps)
        yield env.timeout(w.uplink_delay_s)
        with backhauls[device % w.gateways].request() as turn:
            yield turn
            yield env.timeout(bits / w.backhaul_bps)
        yield env.timeout(w.backhaul_delay_s)
        with server.request() as turn:
            yield turn
            yield env.timeout(w.service_s)
        latencies.append(env.now - born)

    def source(device: int):
        nonlocal generated
        while True:
            yield env.timeout(draw.expovariate(w.rate_per_s))
            if env.now >= w.duration_s:
                return
            generated += 1
            env.process(message(device, env.now))

    for device in range(w.devices):
        env.process(source(device))
    env.run(until=w.duration_s)
    return {
        "requests": generated,
        "finished": len(latencies),
        "mean_latency_s": sum(latencies) / max(len(latencies), 1),
    }


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0])
