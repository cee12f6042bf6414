"""The simulation core: seeded streams, arrival processes, queues, links and servers."""

from fogsim.sim.arrivals import ArrivalProcess, arrival_names, make_arrival, register_arrival
from fogsim.sim.fifo import FifoResult, solve_fifo
from fogsim.sim.link import Delivery, Link
from fogsim.sim.rng import Streams
from fogsim.sim.server import (
    CLOUD_QUEUE_FULL,
    FOG_QUEUE_FULL,
    CloudOutcome,
    CloudServer,
    Server,
    ServerOutcome,
)

__all__ = [
    "CLOUD_QUEUE_FULL",
    "FOG_QUEUE_FULL",
    "ArrivalProcess",
    "CloudOutcome",
    "CloudServer",
    "Delivery",
    "FifoResult",
    "Link",
    "Server",
    "ServerOutcome",
    "Streams",
    "arrival_names",
    "make_arrival",
    "register_arrival",
    "solve_fifo",
]
