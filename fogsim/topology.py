"""The network as a graph: named nodes joined by named links, and the servers placed on them.

Both scenario forms become one graph (``Network.explicit``). A request's route
is the networkx shortest path from its gateway to the node of its server, by
the lowest sum of propagation delays and, among equal delays, the fewest hops.
"""

from __future__ import annotations

from functools import cached_property

import networkx as nx

from fogsim.scenario.models import Cloud, FogServer, Scenario
from fogsim.scenario.network import CLOUD_NODE, REGION_NODE, NetLink, Node

HOP_S = 1e-9  # added per hop, so that among routes of equal delay the shorter one wins
Loc = tuple[str | int, ...]


class Topology:
    """The explicit network of a scenario, its servers, and routes between them."""

    def __init__(self, scenario: Scenario) -> None:
        nodes, links = scenario.network.explicit()
        self.scenario = scenario
        self.nodes: dict[str, Node] = {node.name: node for node in nodes}
        self.links: dict[str, NetLink] = {link.label: link for link in links}
        self.gateways = [node for node in nodes if node.kind == "gateway"]
        self.fog: dict[str, FogServer] = {server.name: server for server in scenario.fog}
        self.clouds: dict[str, Cloud] = {cloud.name: cloud for cloud in scenario.clouds}
        self.graph = nx.DiGraph()
        self.graph.add_nodes_from(self.nodes)
        for link in links:
            self.graph.add_edge(link.source, link.to, link=link.label, delay=link.delay)

    def node_of(self, server: str) -> str:
        """The node a fog server or cloud sits at."""
        if server in self.fog:
            return self.fog[server].at
        return self.clouds[server].at or CLOUD_NODE

    def route(self, source: str, target: str) -> list[str] | None:
        """The links from node ``source`` to node ``target``, in order; None if unreachable."""
        return self._routes.get(source, {}).get(target)

    def delay(self, route: list[str]) -> float:
        return sum(self.links[name].delay for name in route)

    def fog_for(self, group: int, gateway: str) -> str | None:
        """The fog server that serves a device group's devices at ``gateway``, if any."""
        choice = self.scenario.devices[group].fog
        if not self.fog:
            return None
        if choice is None or choice == "nearest":
            return self._nearest(gateway, list(self.fog))
        if choice == "gateway":
            return next((name for name, f in self.fog.items() if f.at == gateway), None)
        return choice if self.route(gateway, self.fog[choice].at) is not None else None

    def cloud_for(self, node: str) -> str | None:
        """The nearest cloud by route from ``node``."""
        return self._nearest(node, list(self.clouds))

    def _nearest(self, node: str, servers: list[str]) -> str | None:
        best: tuple[float, int, str] | None = None
        for order, name in enumerate(servers):
            route = self.route(node, self.node_of(name))
            if route is not None:
                key = (self.delay(route) + HOP_S * len(route), order, name)
                best = key if best is None or key < best else best
        return None if best is None else best[2]

    @cached_property
    def _routes(self) -> dict[str, dict[str, list[str]]]:
        def weight(_a: str, _b: str, data: dict) -> float:
            return data["delay"] + HOP_S

        paths = dict(nx.all_pairs_dijkstra_path(self.graph, weight=weight))
        return {
            source: {
                target: [
                    self.graph.edges[a, b]["link"] for a, b in zip(path, path[1:], strict=False)
                ]
                for target, path in targets.items()
            }
            for source, targets in paths.items()
        }


def problems(scenario: Scenario) -> list[tuple[Loc, str]]:
    """What makes a valid scenario's network unusable, each with its YAML path."""
    found = _name_problems(scenario)
    if found:
        return found
    topology = Topology(scenario)
    return _placement_problems(scenario, topology) or _route_problems(scenario, topology)


def _name_problems(scenario: Scenario) -> list[tuple[Loc, str]]:
    network = scenario.network
    found: list[tuple[Loc, str]] = []
    if network.short_form:
        for i, gateway in enumerate(network.gateways or []):
            if gateway.name in (CLOUD_NODE, REGION_NODE):
                found.append(
                    (
                        ("network", "gateways", i, "name"),
                        f"{gateway.name!r} names the short form's own {gateway.name} node; "
                        "rename the gateway",
                    )
                )
        nodes, links = network.explicit()
    else:
        nodes, links = network.explicit()
        found += _repeats([n.name for n in nodes], ("network", "nodes"), "name", "node")
        found += _repeats([k.label for k in links], ("network", "links"), "name", "link")
        names = {node.name for node in nodes}
        for i, link in enumerate(links):
            for key, end in (("from", link.source), ("to", link.to)):
                if end not in names:
                    found.append((("network", "links", i, key), _unknown("node", end, names)))
    servers = [("fog", i, s.name) for i, s in enumerate(scenario.fog)]
    # A single cloud's index is not in the file; loading drops it from the path.
    cloud_loc: list[Loc] = [("cloud", i) for i in range(len(scenario.clouds))]
    servers += [(*loc, c.name) for loc, c in zip(cloud_loc, scenario.clouds, strict=True)]
    seen: set[str] = set()
    link_names = {link.label for link in links}
    for *loc, name in servers:
        if name in seen or name in link_names:
            what = "a link's" if name in link_names else "another server's"
            found.append(((*loc, "name"), f"server name {name!r} is {what} name too; rename it"))
        seen.add(name)
    node_names = {node.name for node in nodes}
    for i, server in enumerate(scenario.fog):
        if server.at not in node_names:
            found.append((("fog", i, "at"), _unknown("node", server.at, node_names)))
    for loc, cloud in zip(cloud_loc, scenario.clouds, strict=True):
        at = cloud.at or CLOUD_NODE
        if at not in node_names:
            message = (
                _unknown("node", at, node_names)
                if cloud.at
                else "say which node the cloud sits at: at: NODE"
            )
            found.append(((*loc, "at"), message))
    return found


def _placement_problems(scenario: Scenario, topology: Topology) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    for g, group in enumerate(scenario.devices):
        loc = ("devices", g, "fog")
        choice = group.fog
        if choice in (None, "nearest"):
            continue
        if choice == "gateway":
            for gateway in group.gateways:
                if topology.fog_for(g, gateway) is None:
                    found.append((loc, f"no fog server sits at gateway {gateway!r}"))
        elif choice not in topology.fog:
            found.append(
                (loc, _unknown("fog server", choice, ["gateway", "nearest", *topology.fog]))
            )
    return found


def _route_problems(scenario: Scenario, topology: Topology) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    needs_fog = scenario.policy.name == "fog_only"
    for g, group in enumerate(scenario.devices):
        named = group.fog not in (None, "nearest")
        for gateway in group.gateways:
            fog = topology.fog_for(g, gateway)
            if fog is None and (named or needs_fog):
                target = f"fog server {group.fog!r}" if named else "any fog server"
                why = "" if named else " (fog_only sends every request to a fog server)"
                found.append(
                    (("devices", g, "fog"), f"no route from gateway {gateway!r} to {target}{why}")
                )
            start = topology.node_of(fog) if fog else gateway
            if topology.cloud_for(start) is None:
                origin = f"fog server {fog!r}" if fog else f"gateway {gateway!r}"
                found.append(
                    (
                        ("devices", g, "gateway"),
                        f"no route from {origin} to any cloud; add a link towards one",
                    )
                )
    return found


def _repeats(names: list[str], where: Loc, key: str, what: str) -> list[tuple[Loc, str]]:
    seen: set[str] = set()
    found = []
    for i, name in enumerate(names):
        if name in seen:
            found.append(((*where, i, key), f"{what} name {name!r} repeats"))
        seen.add(name)
    return found


def _unknown(what: str, name: str, known: object) -> str:
    names = sorted(known)  # type: ignore[call-overload]
    return f"unknown {what} {name!r}; known: {', '.join(names) if names else 'none'}"
