"""The network a scenario describes: the short form (gateways, backhauls, one cloud link)
or the explicit form (named nodes and named links), and how the first becomes the second.

Links point away from the devices: a request crosses a link from ``from`` to ``to``
and its answer comes back the other way (over ``downlink`` where one is given).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fogsim.scenario.failures import Failures
from fogsim.scenario.quantities import Bits, Seconds
from fogsim.scenario.rates import LinkRate, VaryingRate

CLOUD_NODE = "cloud"  # where the short form's cloud sits
REGION_NODE = "region"  # where the short form's backhauls meet the cloud link
ANSWER_BITS = 512.0  # an answer's size unless the scenario gives one


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LinkSpec(Strict):
    bandwidth: LinkRate
    delay: Seconds = 0.0
    sharing: Literal["ps", "fifo"] = "ps"
    failures: Failures | None = Field(default=None, description="outages; work resumes after")


class Gateway(Strict):
    """Short form: a gateway, its devices' access (own radios or a shared cell), its backhaul."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    backhaul: LinkSpec
    access: Literal["dedicated", "shared"] = "dedicated"
    cell: LinkSpec | None = Field(
        default=None, description="the shared wireless cell; required when access is shared"
    )

    @model_validator(mode="after")
    def _steady_cell(self) -> Gateway:
        _check_steady_cell(self.cell)
        return self


class Node(Strict):
    """Explicit form: a place in the network. Devices attach to gateways; servers sit anywhere."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    kind: Literal["gateway", "switch", "site"] = Field(
        default="switch", description="gateway: devices attach here; site: a data centre"
    )
    access: Literal["dedicated", "shared"] = "dedicated"
    cell: LinkSpec | None = None

    @model_validator(mode="after")
    def _access_on_gateways_only(self) -> Node:
        if self.kind != "gateway" and (self.cell is not None or self.access != "dedicated"):
            raise ValueError(f"access and cell belong to gateways; {self.name!r} is a {self.kind}")
        _check_steady_cell(self.cell)
        return self


class NetLink(Strict):
    """Explicit form: a link from ``from`` (the devices' side) to ``to``."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.:>\-]+$",
        description="default: FROM->TO",
    )
    source: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)
    bandwidth: LinkRate
    delay: Seconds = 0.0
    sharing: Literal["ps", "fifo"] = "ps"
    failures: Failures | None = Field(default=None, description="outages; work resumes after")
    downlink: LinkSpec | None = Field(
        default=None,
        description="the answers' direction as a shared link of its own; "
        "without it answers take the delay plus their size over the bandwidth, without contention",
    )

    @property
    def label(self) -> str:
        return self.name or f"{self.source}->{self.to}"

    @property
    def up(self) -> LinkSpec:
        return LinkSpec.model_construct(
            bandwidth=self.bandwidth, delay=self.delay, sharing=self.sharing,
            failures=self.failures,
        )


class Network(Strict):
    """Either the short form (``gateways``, ``cloud_link``) or the explicit one (``nodes``,
    ``links``); :meth:`explicit` gives the explicit form of both."""

    gateways: list[Gateway] | None = Field(default=None, min_length=1)
    cloud_link: LinkSpec | None = None
    nodes: list[Node] | None = Field(default=None, min_length=1)
    links: list[NetLink] | None = Field(default=None, min_length=1)
    answer_size: Bits = Field(default=ANSWER_BITS, description="size of an answer sent back")
    reply: bool = Field(
        default=True,
        description="false: no answer comes back; a request is complete when its last "
        "server finishes (one-way offload, as YAFS and Scission count it)",
    )

    @model_validator(mode="after")
    def _answer_keys_need_a_reply(self) -> Network:
        if self.reply:
            return self
        # Compared with the default, not "was it given": a resolved scenario lists every key.
        if self.answer_size != ANSWER_BITS:
            raise ValueError(
                "answer_size counts only when answers come back; remove it, or reply: true"
            )
        with_downlink = [link.label for link in self.links or [] if link.downlink is not None]
        if with_downlink:
            raise ValueError(
                f"a downlink carries answers, and reply is false; remove the downlink of "
                f"{', '.join(with_downlink)}, or set reply: true"
            )
        return self

    @model_validator(mode="after")
    def _one_form(self) -> Network:
        short = self.gateways is not None or self.cloud_link is not None
        explicit = self.nodes is not None or self.links is not None
        if short and explicit:
            raise ValueError(
                "give either gateways and cloud_link (the short form) or nodes and links "
                "(the explicit form), not both"
            )
        if explicit and (self.nodes is None or self.links is None):
            raise ValueError("the explicit form needs both nodes and links")
        if not explicit and (self.gateways is None or self.cloud_link is None):
            raise ValueError("give gateways and cloud_link, or nodes and links")
        return self

    @property
    def short_form(self) -> bool:
        return self.gateways is not None

    def explicit(self) -> tuple[list[Node], list[NetLink]]:
        """Nodes and links; the short form's are its gateways, a region switch and the cloud."""
        if self.nodes is not None and self.links is not None:
            return list(self.nodes), list(self.links)
        assert self.gateways is not None and self.cloud_link is not None
        nodes = [
            Node(name=g.name, kind="gateway", access=g.access, cell=g.cell) for g in self.gateways
        ]
        nodes += [Node(name=REGION_NODE, kind="switch"), Node(name=CLOUD_NODE, kind="site")]
        links = [
            _link(f"backhaul:{g.name}", g.name, REGION_NODE, g.backhaul) for g in self.gateways
        ]
        links.append(_link("cloud_link", REGION_NODE, CLOUD_NODE, self.cloud_link))
        return nodes, links

    @property
    def gateway_nodes(self) -> list[Node]:
        """The nodes devices attach to, in the order devices index them."""
        return [node for node in self.explicit()[0] if node.kind == "gateway"]


def _link(name: str, source: str, to: str, spec: LinkSpec) -> NetLink:
    # Built from validated values in base units, so not validated again.
    return NetLink.model_construct(
        name=name,
        source=source,
        to=to,
        bandwidth=spec.bandwidth,
        delay=spec.delay,
        sharing=spec.sharing,
        failures=spec.failures,
    )


def _check_steady_cell(cell: LinkSpec | None) -> None:
    # The answer's last hop and the radios' energy read one rate per cell.
    if cell is not None and cell.failures is not None:
        raise ValueError("a shared cell cannot fail (yet); failures are supported on links")
    if cell is not None and isinstance(cell.bandwidth, VaryingRate):
        raise ValueError(
            "a shared cell's bandwidth must be a plain rate (e.g. 50 Mbps); "
            "time-varying rates are supported on backhauls, cloud links and explicit links"
        )
