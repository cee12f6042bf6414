"""The network as a graph: devices, gateways and the cloud, joined by links.

Nodes are ``device:<i>``, ``gateway:<name>`` and ``cloud``; each edge carries a
``link`` attribute (a name) and, for shared links, a ``spec`` (a LinkSpec). A
request's route is the graph path from its gateway to the cloud, so adding a
hop (an aggregation switch, a regional edge) is a change to this graph only.
"""

from __future__ import annotations

import networkx as nx

from fogsim.scenario.models import LinkSpec, Scenario

CLOUD = "cloud"


def gateway_node(name: str) -> str:
    return f"gateway:{name}"


def build_topology(scenario: Scenario, device_gateway: list[str] | None = None) -> nx.DiGraph:
    """The uplink graph of ``scenario``; with ``device_gateway``, device nodes too."""
    graph = nx.DiGraph()
    graph.add_node(CLOUD, kind="cloud")
    region = "cloud_link"
    for gateway in scenario.network.gateways:
        node = gateway_node(gateway.name)
        graph.add_node(node, kind="gateway", access=gateway.access, cell=gateway.cell)
        graph.add_edge(node, "region", link=f"backhaul:{gateway.name}", spec=gateway.backhaul)
    graph.add_node("region", kind="aggregation")
    graph.add_edge("region", CLOUD, link=region, spec=scenario.network.cloud_link)
    for index, name in enumerate(device_gateway or []):
        graph.add_edge(f"device:{index}", gateway_node(name), link=f"access:{index}", spec=None)
    return graph


def shared_links(graph: nx.DiGraph) -> dict[str, LinkSpec]:
    """Every shared link in the graph (backhauls, cloud link), by name."""
    return {data["link"]: data["spec"] for _, _, data in graph.edges(data=True) if data["spec"]}


def route_to_cloud(graph: nx.DiGraph, gateway: str) -> list[str]:
    """Names of the shared links a request crosses from ``gateway`` to the cloud, in order."""
    path = nx.shortest_path(graph, gateway_node(gateway), CLOUD)
    return [graph.edges[a, b]["link"] for a, b in zip(path, path[1:], strict=False)]
