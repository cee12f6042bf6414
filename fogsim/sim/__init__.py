"""The simulation core: seeded streams, arrival processes, queues, links and the cloud server."""

from fogsim.sim.arrivals import ArrivalProcess, arrival_names, make_arrival, register_arrival
from fogsim.sim.cloud import CLOUD_QUEUE_FULL, CloudOutcome, CloudServer
from fogsim.sim.fifo import FifoResult, solve_fifo
from fogsim.sim.link import Delivery, Link
from fogsim.sim.rng import Streams

__all__ = [
    "CLOUD_QUEUE_FULL",
    "ArrivalProcess",
    "CloudOutcome",
    "CloudServer",
    "Delivery",
    "FifoResult",
    "Link",
    "Streams",
    "arrival_names",
    "make_arrival",
    "register_arrival",
    "solve_fifo",
]
