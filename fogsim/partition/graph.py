"""A network as rows in execution order, from its torch.fx graph, and where it can be cut.

Row 0 is the input. Every other row is one operation of the traced graph (a module call, a
function or a method). fogsim's quantized layers (``QConv2d``, ``QLinear``, ``ActQuant``)
are traced as one module call each, not into: their quantizers branch on tensor values,
which torch.fx cannot trace, and as calls they run their own forward, fake quantization
included, so a row's time is what that layer really executes here. Constants (``get_attr``)
are not rows: every tier holds its own copy of the weights. A row is a cut point when the
only value computed at or before it and still needed after it is its own output, one
tensor: what crosses a cut is then that tensor alone.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from fogsim.errors import UserInputError
from fogsim.nn.layers import ActQuant, QConv2d, QLinear

# Layers that quantize: one row each, timed running their own forward.
QUANTIZED_LAYERS = (QConv2d, QLinear, ActQuant)


@dataclass
class Row:
    """One operation of the network: what it is, what it computes and what it outputs."""

    index: int
    layer: str
    op: str
    node: fx.Node | None
    macs: int = 0
    params: int = 0
    output_shape: tuple[int, ...] = ()
    output_bytes: int = 0
    input_bytes: int = 0
    cut_point: bool = False
    single_tensor: bool = False


class _Tracer(fx.Tracer):
    """torch.fx's tracer, keeping fogsim's quantized layers whole (see the module's notes)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, QUANTIZED_LAYERS) or super().is_leaf_module(m, module_qualified_name)


def trace(module: nn.Module) -> fx.GraphModule:
    """The fx graph of ``module``, or a UserInputError saying why it cannot be traced."""
    try:
        traced = _Tracer().trace(module)
        return fx.GraphModule(module, traced, type(module).__name__)
    except Exception as exc:  # fx raises many kinds (TraceError, TypeError, ...)
        raise UserInputError(
            f"cannot trace {type(module).__name__} with torch.fx ({type(exc).__name__}: "
            f"{exc}); only networks whose forward torch.fx can trace can be profiled"
        ) from None


def rows_of(graph: fx.GraphModule, example: torch.Tensor) -> list[Row]:
    """Run ``graph`` once on ``example`` and describe each row: sizes, MACs, parameters and
    cut points."""
    nodes = [n for n in graph.graph.nodes if n.op not in ("get_attr", "output")]
    if len(nodes) < 2 or nodes[0].op != "placeholder" or nodes[1].op == "placeholder":
        raise UserInputError("only networks with a single input tensor can be profiled")
    values: dict[fx.Node, object] = {}
    rows = [
        _describe(graph, node, values, index)
        for index, (node, _, _) in enumerate(execute(graph, example, values))
    ]
    _mark_cut_points(rows)
    return rows


def execute(
    graph: fx.GraphModule, example: torch.Tensor, values: dict | None = None
) -> Iterator[tuple[fx.Node, object, float]]:
    """Run ``graph`` on ``example`` one row at a time: each row's node, its output (before
    any later in-place operation changes it) and the seconds it took. Constants are
    fetched untimed."""
    values = {} if values is None else values
    for node in graph.graph.nodes:
        if node.op == "output":
            return
        args, kwargs = fx.node.map_arg((node.args, node.kwargs), lambda n: values[n])
        start = time.perf_counter()
        values[node] = _run(graph, node, args, kwargs, example)
        elapsed = time.perf_counter() - start
        if node.op != "get_attr":
            yield node, values[node], elapsed


def _run(graph: fx.GraphModule, node: fx.Node, args: tuple, kwargs: dict, x: object) -> object:
    if node.op == "placeholder":
        return x
    if node.op == "get_attr":
        return _attr(graph, node.target)
    if node.op == "call_module":
        return graph.get_submodule(node.target)(*args, **kwargs)
    if node.op == "call_method":
        return getattr(args[0], node.target)(*args[1:], **kwargs)
    return node.target(*args, **kwargs)


def _attr(graph: fx.GraphModule, target: str) -> object:
    owner, _, name = target.rpartition(".")
    return getattr(graph.get_submodule(owner) if owner else graph, name)


def _describe(graph: fx.GraphModule, node: fx.Node, values: dict, index: int) -> Row:
    out = values[node]
    tensors = _tensors(out)
    inputs = [values[n] for n in node.all_input_nodes]
    row = Row(
        index=index,
        layer=str(node.target) if node.op == "call_module" else node.name,
        op=_op_name(graph, node),
        node=node,
        output_shape=tuple(out.shape) if isinstance(out, torch.Tensor) else (),
        output_bytes=sum(t.numel() * t.element_size() for t in tensors),
        input_bytes=sum(t.numel() * t.element_size() for v in inputs for t in _tensors(v)),
        single_tensor=isinstance(out, torch.Tensor),
    )
    if node.op == "placeholder":
        row.layer, row.input_bytes = "input", 0
        return row
    row.macs = _macs(graph, node, values, out)
    row.params = _params(graph, node)
    return row


def _tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _op_name(graph: fx.GraphModule, node: fx.Node) -> str:
    if node.op == "call_module":
        return type(graph.get_submodule(node.target)).__name__
    if node.op in ("placeholder", "call_method"):
        return str(node.target) if node.op == "call_method" else "input"
    return getattr(node.target, "__name__", str(node.target))


_CONV_FUNCTIONS = {F.conv1d, F.conv2d, F.conv3d, torch.conv1d, torch.conv2d, torch.conv3d}
_LINEAR_FUNCTIONS = {F.linear, torch.matmul, operator.matmul}


def _macs(graph: fx.GraphModule, node: fx.Node, values: dict, out: object) -> int:
    """Multiply-accumulates of convolutions and matrix products; other operations count 0,
    as in ``fogsim.nn.ops`` (a few percent of the total in these networks)."""
    if not isinstance(out, torch.Tensor):
        return 0
    if node.op == "call_module":
        module = graph.get_submodule(node.target)
        if isinstance(module, nn.modules.conv._ConvNd):
            per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
            return out.numel() * per_output
        if isinstance(module, nn.Linear):
            return out.numel() * module.in_features
        return 0
    if node.op != "call_function":
        return 0
    if node.target in _CONV_FUNCTIONS:
        weight = values[node.args[1]] if len(node.args) > 1 else values[node.kwargs["weight"]]
        return out.numel() * math.prod(weight.shape[1:])
    if node.target in _LINEAR_FUNCTIONS:
        left = values[node.args[0]]
        return out.numel() * int(left.shape[-1])
    return 0


def _params(graph: fx.GraphModule, node: fx.Node) -> int:
    """Parameters this row reads: its module's own, or the constants it is given."""
    if node.op == "call_module":
        return sum(p.numel() for p in graph.get_submodule(node.target).parameters())
    constants = [n for n in node.all_input_nodes if n.op == "get_attr"]
    return sum(
        t.numel() for n in constants if isinstance(t := _attr(graph, n.target), nn.Parameter)
    )


def _mark_cut_points(rows: list[Row]) -> None:
    """A row is a cut point when its output, a single tensor, is the only live value after it."""
    position = {row.node: row.index for row in rows}
    after_all = len(rows)  # the graph's output consumes after every row
    # The row at which each value is last needed.
    last_use = [
        max((position.get(user, after_all) for user in row.node.users), default=row.index)
        for row in rows
    ]
    needed_later = 0  # the latest last use among the rows before the current one
    for row in rows:
        row.cut_point = row.single_tensor and needed_later <= row.index
        needed_later = max(needed_later, last_use[row.index])
    if not rows[-1].single_tensor:
        raise UserInputError("the network's last operation does not output one tensor")
