"""The verifier rejects malformed graphs with a message naming the node and the rule."""

import numpy as np
import pytest

from snnc.compiler import ops
from snnc.compiler.errors import VerificationError
from snnc.compiler.graph import Graph, GraphBuilder, Node
from snnc.compiler.types import TensorType
from snnc.compiler.wellformed import check_well_formed


def dense_graph(weight=None):
    b = GraphBuilder("g")
    x = b.input("input", (4,))
    w = np.ones((2, 4)) if weight is None else weight
    y = b.add(ops.Dense(2), [x], {"weight": w, "bias": np.zeros(2)}, name="fc")
    b.output(y)
    return b.build()


def with_node(graph, name, **changes):
    return graph.replace(nodes=[n.replace(**changes) if n.name == name else n for n in graph.nodes])


def test_well_formed_graph_passes():
    g = dense_graph()
    assert check_well_formed(g) is g


def test_nan_weights_are_rejected():
    w = np.ones((2, 4))
    w[1, 2] = np.nan
    with pytest.raises(VerificationError, match=r"%fc = dense: parameter weight has 1 NaN or infinite values"):
        dense_graph(w)


def test_wrong_parameter_shape_and_names():
    g = dense_graph()
    with pytest.raises(VerificationError, match=r"%fc = dense: parameter weight has shape \[2, 3\], expected \[2, 4\]"):
        check_well_formed(with_node(g, "fc", params={"weight": np.ones((2, 3)), "bias": np.zeros(2)}))
    with pytest.raises(VerificationError, match=r"parameters are \['weight'\], expected \['bias', 'weight'\]"):
        check_well_formed(with_node(g, "fc", params={"weight": np.ones((2, 4))}))


def test_stored_type_must_match_inferred():
    g = dense_graph()
    with pytest.raises(VerificationError, match=r"type is f32\[3\] but the op gives f32\[2\]"):
        check_well_formed(with_node(g, "fc", type=TensorType((3,))))


def test_use_before_definition_and_dangling_input():
    g = dense_graph()
    reordered = g.replace(nodes=[g.nodes[1], g.nodes[0], g.nodes[2]])
    with pytest.raises(VerificationError, match="input %input is defined after it"):
        check_well_formed(reordered)
    with pytest.raises(VerificationError, match="input %ghost is not defined"):
        check_well_formed(with_node(g, "fc", inputs=("ghost",)))


def test_arity_duplicate_names_and_missing_output():
    g = dense_graph()
    with pytest.raises(VerificationError, match="takes 1 inputs, got 2"):
        check_well_formed(with_node(g, "fc", inputs=("input", "input")))
    with pytest.raises(VerificationError, match="two nodes named %fc"):
        Graph("g", (*g.nodes, g.node("fc")))
    with pytest.raises(VerificationError, match="has no output"):
        check_well_formed(g.replace(nodes=g.nodes[:2]))


def relu_graph():
    relu = GraphBuilder("g")
    relu.output(relu.add(ops.ReLU(), [relu.input("input", (4,))], name="act"))
    return relu.build()


def test_stage_legality():
    g = dense_graph()
    check_well_formed(g.replace(stage="spiking"))  # linear ops act on each time step's values
    check_well_formed(g.replace(stage="integer"))  # and run on the host in a Loihi graph
    with pytest.raises(VerificationError, match="%act = relu: not allowed in integer graphs"):
        check_well_formed(relu_graph().replace(stage="integer"))
    with pytest.raises(VerificationError, match="%act = relu: not allowed in spiking graphs"):
        check_well_formed(relu_graph().replace(stage="spiking"))
    neuron = GraphBuilder("g", stage="spiking")
    neuron.output(neuron.add(ops.IfNeuron(), [neuron.input("input", (4,))], name="act"))
    with pytest.raises(VerificationError, match="%act = if_neuron: not allowed in float graphs"):
        check_well_formed(neuron.build().replace(stage="float"))
    with pytest.raises(VerificationError, match="unknown stage"):
        check_well_formed(g.replace(stage="analog"))


def test_softmax_only_before_output():
    b = GraphBuilder("g")
    x = b.input("input", (4,))
    s = b.add(ops.Softmax(), [x])
    b.output(b.add(ops.ReLU(), [s]))
    with pytest.raises(VerificationError, match="softmax is only supported just before an output"):
        b.build()


def test_builder_reports_shape_errors_with_the_node():
    b = GraphBuilder("g")
    x = b.input("input", (1, 4, 4))
    with pytest.raises(VerificationError, match=r"%conv2d = conv2d: window of 5 does not fit input of 4"):
        b.add(ops.Conv2d(2, (5, 5)), [x], {"weight": np.ones((2, 1, 5, 5)), "bias": np.zeros(2)})
    with pytest.raises(VerificationError, match="takes a CHW image"):
        b.add(ops.MaxPool2d((2, 2), (2, 2)), [b.add(ops.Transpose((1, 2, 0)), [x])])


def test_graph_helpers_do_not_mutate():
    g = dense_graph()
    node = g.node("fc")
    changed = node.replace(meta={"scale": 2.0})
    assert dict(node.meta) == {} and changed.meta["scale"] == 2.0
    with pytest.raises(ValueError):
        node.params["weight"][0, 0] = 5.0  # parameters are read-only
    assert [n.name for n in g.users("input")] == ["fc"]
    assert list(g.to_networkx().edges()) == [("input", "fc"), ("fc", "output")]
