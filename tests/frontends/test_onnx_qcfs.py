"""The ONNX frontend fuses the QCFS activation's elementwise chain (PyTorch's export of the
authors' code, and its algebraic variants) into one ``qcfs`` op: interpreter against
onnxruntime on a real torch export and on chains built with onnx.helper; a Floor outside
such a chain is refused by name, with the reason."""

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from error_testing import raises
from onnx_testing import ATOL, RTOL, make_model, ort_outputs, save
from snnc.compiler import load_model, ops, run_model
from snnc.compiler.errors import UnsupportedError

N = "N"
FIXTURES = Path(__file__).parent / "fixtures" / "onnx" / "torch_qcfs"
EXPORT = json.loads((FIXTURES / "MANIFEST.json").read_text())["exports"]["qcfs_cnn_opset13"]
LAMBDA, LEVELS, SHIFT = 2.5, 4, 0.5


def qcfs_ops(graph):
    return [n.op for n in graph.nodes if isinstance(n.op, ops.Qcfs)]


def test_torch_export_is_three_qcfs_ops_matching_onnxruntime_and_torch():
    """The fixture's inputs keep every floor's argument 1e-3 of a step from an integer
    (make_torch_qcfs_fixture.py), so no runtime's rounding can flip a level: exact levels."""
    path = FIXTURES / EXPORT["file"]
    data = np.load(path.with_suffix(".npz"))
    graph = load_model(path)
    expected = [ops.Qcfs(L, lam, 0.5) for L, lam in zip(EXPORT["qcfs_levels"], EXPORT["qcfs_thresholds"])]
    assert qcfs_ops(graph) == expected
    assert not [n for n in graph.nodes if isinstance(n.op, ops.Affine)]  # the whole chain is in the qcfs ops
    ours = run_model(graph, data["x"])["y"]
    (theirs,) = ort_outputs(path, [data["x"]])
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(ours, data["torch"], rtol=RTOL, atol=ATOL)
    assert np.unique(theirs).size >= 2


# ----------------------------------------------------------------------------- variants


def scalar(value):
    return np.asarray(value, np.float32)


def chain(*steps):
    """Nodes ``x -> step -> ... -> y``; a step is ``(op_type, constant operand or None,
    attributes)``, the constant ``(name, value)`` becoming an initializer (a ``!`` before the
    name puts it first)."""
    nodes, inits, value = [], {}, "x"
    for k, (op_type, constant, attrs) in enumerate(steps):
        out = "y" if k == len(steps) - 1 else f"v{k}"
        inputs = [value]
        for name, c in constant or []:
            first, name = name.startswith("!"), name.lstrip("!")
            inits[name] = scalar(c) if np.ndim(c) == 0 else np.asarray(c, np.float32)
            inputs = [name, value] if first else [*inputs, name]
        nodes.append(helper.make_node(op_type, inputs, [out], name=f"/act/{op_type}_{k}", **(attrs or {})))
        value = out
    return nodes, inits


def step(op_type, *constants, **attrs):
    return op_type, [(f"c{op_type}{i}_{v}", v) if not isinstance(v, tuple) else v for i, v in enumerate(constants)], attrs


AUTHORS = [step("Div", LAMBDA), step("Mul", LEVELS), step("Add", SHIFT), step("Floor"), step("Div", LEVELS),
           step("Clip", 0.0, 1.0), step("Mul", LAMBDA)]  # fmt: skip
VARIANTS = {
    "authors": AUTHORS,
    "mul_by_levels_over_lambda": [step("Mul", LEVELS / LAMBDA), step("Add", SHIFT), step("Floor"),
                                  step("Clip", 0.0, LEVELS), step("Div", LEVELS), step("Mul", LAMBDA)],
    "max_min_and_sub": [step("Div", LAMBDA), step("Mul", LEVELS), step("Sub", -SHIFT), step("Floor"),
                        step("Mul", LAMBDA / LEVELS), step("Max", 0.0), step("Min", LAMBDA)],
    "relu_then_clip_at_lambda": [step("Mul", LEVELS / LAMBDA), step("Add", SHIFT), step("Floor"), step("Relu"),
                                 step("Mul", LAMBDA / LEVELS), step("Clip", ("lo_absent", np.float32(-3e38)), ("hi", LAMBDA))],
    "constant_first": [step("Mul", ("!k", LEVELS / LAMBDA)), step("Add", ("!s", SHIFT)), step("Floor"),
                       step("Div", LEVELS), step("Clip", 0.0, 1.0), step("Mul", ("!lam", LAMBDA))],
}  # fmt: skip


def clear_inputs(rng, shape, levels=LEVELS, lam=LAMBDA, shift=SHIFT):
    """Inputs ``x`` whose floor argument ``x * L / λ + shift`` has a fractional part in
    [0.05, 0.95] (no runtime's rounding can flip a level there), over levels -2 to L + 2."""
    whole = rng.integers(-2, levels + 3, size=shape)
    return ((whole + rng.uniform(0.05, 0.95, size=shape) - shift) * lam / levels).astype(np.float32)


def assert_matches_onnxruntime(path, x):
    ours = run_model(load_model(path), x)
    (theirs,) = ort_outputs(path, [x])
    np.testing.assert_allclose(ours["y"], theirs, rtol=RTOL, atol=ATOL)
    return theirs


@pytest.mark.parametrize("steps", VARIANTS.values(), ids=VARIANTS.keys())
def test_chain_variants_are_one_qcfs_op(steps, tmp_path, rng):
    nodes, inits = chain(*steps)
    path = save(make_model(nodes, {"x": [N, 3, 4]}, ["y"], inits), tmp_path)
    graph = load_model(path)
    ((node,),) = [[n for n in graph.nodes if n.op.NAME not in ("input", "output")]]
    assert node.name == "act"  # named after the chain's scope
    assert node.op.levels == LEVELS and node.op.shift == pytest.approx(SHIFT)
    assert node.op.threshold == pytest.approx(LAMBDA, rel=1e-6)
    theirs = assert_matches_onnxruntime(path, clear_inputs(rng, (16, 3, 4)))
    assert np.unique(theirs).size == LEVELS + 1  # every level reached, 0 and λ included


def test_clip_attributes_before_opset_11(tmp_path, rng):
    steps = [s if s[0] != "Clip" else ("Clip", [], {"min": 0.0, "max": 1.0}) for s in AUTHORS]
    nodes, inits = chain(*steps)
    path = save(make_model(nodes, {"x": [N, 5]}, ["y"], inits, opset=9), tmp_path)
    assert qcfs_ops(load_model(path)) == [ops.Qcfs(LEVELS, LAMBDA, SHIFT)]
    assert_matches_onnxruntime(path, clear_inputs(rng, (8, 5)))


def test_scalings_beside_the_chain_stay_outside_it(tmp_path, rng):
    """A Mul by 2 before and after the chain is not λ's: qcfs keeps λ, the Muls stay."""
    nodes, inits = chain(step("Mul", 2.0), *AUTHORS, step("Mul", 3.0))
    path = save(make_model(nodes, {"x": [N, 6]}, ["y"], inits), tmp_path)
    graph = load_model(path)
    assert [n.op.NAME for n in graph.nodes][1:-1] == ["affine", "qcfs", "affine"]
    assert qcfs_ops(graph) == [ops.Qcfs(LEVELS, LAMBDA, SHIFT)]
    assert_matches_onnxruntime(path, clear_inputs(rng, (8, 6)) / 2)


def test_clip_at_lambda_alone_is_a_clipped_relu(tmp_path, rng):
    nodes, inits = chain(step("Clip", 0.0, LAMBDA))
    path = save(make_model(nodes, {"x": [N, 6]}, ["y"], inits), tmp_path)
    assert [n.op for n in load_model(path).nodes][1:-1] == [ops.ReLU(max_value=LAMBDA)]
    assert_matches_onnxruntime(path, 2 * rng.normal(size=(4, 6)).astype(np.float32))


# ----------------------------------------------------------------------------- refused


PER_CHANNEL = np.asarray([2.0, 2.5, 3.0], np.float32).reshape(3, 1)
REFUSED = {
    "floor_alone": ([step("Floor")], "nothing after it clips"),
    "per_channel_lambda": (
        [step("Div", ("lam_c", PER_CHANNEL)), *AUTHORS[1:-1], step("Mul", ("lam_c2", PER_CHANNEL))],
        "its chain's λ (from 2 to 3) or shift differs between channels; snnc's qcfs takes one λ and one shift per layer",
    ),
    "no_scaling_before": ([*AUTHORS[2:]], "what precedes it does not multiply by L / λ = 1.6"),
    "clip_not_at_zero": (
        [*AUTHORS[:4], step("Div", LEVELS), step("Clip", -0.5, 1.0), step("Mul", LAMBDA)],
        "clip(floor, -2, 4)",
    ),
    "non_whole_levels": (
        [*AUTHORS[:4], step("Div", LEVELS), step("Clip", 0.0, 0.9), step("Mul", LAMBDA)],
        "clip(floor, 0, 3.6)",
    ),
}


@pytest.mark.parametrize("steps, reason", REFUSED.values(), ids=REFUSED.keys())
def test_floor_outside_a_qcfs_chain_is_refused(steps, reason, tmp_path):
    nodes, inits = chain(*steps)
    path = save(make_model(nodes, {"x": [N, 3, 4]}, ["y"], inits), tmp_path)
    raises(UnsupportedError, path, "Floor (nodes '/act/Floor_", "snnc converts Floor only inside a QCFS activation", reason)
