"""The shared part of the YAFS offload workload in Ciw, for ``benchmarks/bench_peer.py``.

Ciw (an open queueing network simulator) expresses part of the workload, not all of it:
- each gateway's backhaul is a FIFO single-server node with a deterministic service
  (the payload over 100 Mbit/s), fed by Poisson arrivals at 50/s: the 50 devices behind
  it at 1/s each;
- the propagation delays and each device's own uplink become one infinite-server node
  with a constant delay (5 ms + the payload over 10 Mbit/s + 10 ms); constant delays
  commute, so a request's latency is the same wherever it is added;
- the cloud is a FIFO single-server node at a fixed 0.05 ms.
Left out: each device's own uplink queue. Ciw would need 10,000 nodes and a
10,000-square routing matrix for it; at 1 request/s and 0.8 ms a request, a request
finds its device busy less than 0.1% of the time, so the latencies barely differ.

    python benchmarks/peers/ciw_offload.py --devices 10000 --duration 5

Prints one JSON line, as ``simpy_offload.py`` does.
"""

from __future__ import annotations

import ciw
from peer_cli import Workload, main  # benchmarks/peers/, beside this script


def run(w: Workload) -> dict[str, float]:
    bits = w.bits
    delay_node, cloud_node = w.gateways, w.gateways + 1
    nodes = w.gateways + 2
    routing = [[0.0] * nodes for _ in range(nodes)]
    for g in range(w.gateways):
        routing[g][delay_node] = 1.0
    routing[delay_node][cloud_node] = 1.0
    constant_s = bits / w.uplink_bps + w.uplink_delay_s + w.backhaul_delay_s
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=w.devices / w.gateways * w.rate_per_s)]
        * w.gateways
        + [None, None],
        service_distributions=[ciw.dists.Deterministic(value=bits / w.backhaul_bps)] * w.gateways
        + [ciw.dists.Deterministic(value=constant_s), ciw.dists.Deterministic(value=w.service_s)],
        number_of_servers=[1] * w.gateways + [float("inf"), 1],
        routing=routing,
    )
    ciw.seed(w.seed)
    simulation = ciw.Simulation(network)
    simulation.simulate_until_max_time(w.duration_s)
    records = simulation.get_all_records()
    done = [r for r in records if r.node == cloud_node + 1]  # Ciw numbers nodes from 1
    born = {r.id_number: r.arrival_date for r in records if r.node <= w.gateways}
    latencies = [r.exit_date - born[r.id_number] for r in done]
    return {
        "requests": simulation.nodes[0].number_of_individuals,
        "finished": len(done),
        "mean_latency_s": sum(latencies) / max(len(latencies), 1),
    }


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0])
