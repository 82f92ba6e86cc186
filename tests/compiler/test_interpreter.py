"""The interpreter against plain-loop reference implementations written from each op's equation.

The loops are slow and obviously correct; the interpreter is vectorized. Framework-level
checks (interpreter vs Keras' ``predict``) live in tests/frontends.
"""

import itertools

import numpy as np
import pytest

from snnc.compiler import interpreter, ops
from snnc.compiler.errors import DataError
from snnc.compiler.graph import GraphBuilder

TOL = dict(rtol=1e-5, atol=1e-6)


def run_op(op, x, params=None, extra_inputs=()):
    """Run one op on batched ``x`` (and further inputs) through the interpreter."""
    b = GraphBuilder("one")
    names = [b.input(f"in{i}", a.shape[1:]) for i, a in enumerate([x, *extra_inputs])]
    b.output(b.add(op, names, params))
    g = b.build()
    return interpreter.run(g, [x, *extra_inputs])["output"]


def conv_reference(x, w, b, stride, pads, dilation, groups):
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    pt, pl, pb, pr = pads
    xp = np.zeros((n, c, h + pt + pb, wd + pl + pr))
    xp[:, :, pt : pt + h, pl : pl + wd] = x
    ho = (h + pt + pb - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + pl + pr - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((n, f, ho, wo))
    fg = f // groups
    for k, i, j in itertools.product(range(f), range(ho), range(wo)):
        g = k // fg
        for cc, u, v in itertools.product(range(cg), range(kh), range(kw)):
            y[:, k, i, j] += w[k, cc, u, v] * xp[:, g * cg + cc, i * stride[0] + u * dilation[0], j * stride[1] + v * dilation[1]]
        y[:, k, i, j] += b[k]
    return y


@pytest.mark.parametrize(
    "c, f, kernel, stride, pads, dilation, groups",
    [
        (3, 4, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),
        (2, 3, (3, 2), (2, 1), (1, 0, 2, 1), (1, 1), 1),
        (4, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4),  # depthwise
        (4, 8, (2, 2), (2, 2), (0, 1, 1, 0), (1, 1), 2),  # grouped, multiplier 2
        (2, 2, (3, 3), (1, 2), (2, 2, 2, 2), (2, 2), 1),  # dilated
    ],
)
def test_conv2d(rng, c, f, kernel, stride, pads, dilation, groups):
    x = rng.normal(size=(3, c, 7, 8)).astype(np.float32)
    w = rng.normal(size=(f, c // groups, *kernel)).astype(np.float32)
    b = rng.normal(size=f).astype(np.float32)
    got = run_op(ops.Conv2d(f, kernel, stride, pads, dilation, groups), x, {"weight": w, "bias": b})
    np.testing.assert_allclose(got, conv_reference(x, w, b, stride, pads, dilation, groups), **TOL)


def pool_reference(x, kernel, stride, pads, reduce, pad_value, count_pad):
    n, c, h, w = x.shape
    pt, pl, pb, pr = pads
    ho = (h + pt + pb - kernel[0]) // stride[0] + 1
    wo = (w + pl + pr - kernel[1]) // stride[1] + 1
    y = np.zeros((n, c, ho, wo))
    for i, j in itertools.product(range(ho), range(wo)):
        rows = [r - pt for r in range(i * stride[0], i * stride[0] + kernel[0])]
        cols = [q - pl for q in range(j * stride[1], j * stride[1] + kernel[1])]
        vals = [x[:, :, r, q] if 0 <= r < h and 0 <= q < w else None for r in rows for q in cols]
        inside = [v for v in vals if v is not None]
        if reduce == "max":
            y[:, :, i, j] = np.max(inside + [np.full((n, c), pad_value)] * (len(vals) - len(inside)), axis=0)
        else:
            y[:, :, i, j] = np.sum(inside, axis=0) / (len(vals) if count_pad else len(inside))
    return y


@pytest.mark.parametrize("pads", [(0, 0, 0, 0), (1, 1, 0, 1), (1, 0, 1, 0)])
@pytest.mark.parametrize("kernel, stride", [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((3, 2), (1, 2))])
def test_pools(rng, kernel, stride, pads):
    x = rng.normal(size=(2, 3, 7, 6)).astype(np.float32)
    got = run_op(ops.MaxPool2d(kernel, stride, pads), x)
    np.testing.assert_allclose(got, pool_reference(x, kernel, stride, pads, "max", -np.inf, False), **TOL)
    for count_pad in (False, True):
        got = run_op(ops.AvgPool2d(kernel, stride, pads, count_pad), x)
        np.testing.assert_allclose(got, pool_reference(x, kernel, stride, pads, "avg", 0, count_pad), **TOL)


def test_dense_and_global_pool(rng):
    x = rng.normal(size=(5, 6)).astype(np.float32)
    w, b = rng.normal(size=(3, 6)), rng.normal(size=3)
    want = np.array([[sum(w[o, i] * x[n, i] for i in range(6)) + b[o] for o in range(3)] for n in range(5)])
    np.testing.assert_allclose(run_op(ops.Dense(3), x, {"weight": w, "bias": b}), want, **TOL)
    img = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    means = np.array([[img[n, c].sum() / 20 for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(run_op(ops.GlobalAvgPool(), img), means, **TOL)
    np.testing.assert_allclose(run_op(ops.GlobalAvgPool(keepdims=True), img), means[:, :, None, None], **TOL)


def test_batch_norm_and_affine_are_per_channel(rng):
    x = rng.normal(size=(2, 3, 2, 2)).astype(np.float32)
    gamma, beta, mean = rng.normal(size=(3, 3))
    var = rng.uniform(0.5, 2, size=3)
    got = run_op(ops.BatchNorm(1e-3), x, {"gamma": gamma, "beta": beta, "mean": mean, "var": var})
    for c in range(3):
        want = gamma[c] * (x[:, c] - mean[c]) / np.sqrt(var[c] + 1e-3) + beta[c]
        np.testing.assert_allclose(got[:, c], want, rtol=1e-5, atol=1e-5)
    got = run_op(ops.Affine(), x, {"scale": gamma, "shift": beta})
    for c in range(3):
        np.testing.assert_allclose(got[:, c], x[:, c] * np.float32(gamma[c]) + np.float32(beta[c]), **TOL)


@pytest.mark.parametrize(
    "op",
    [ops.ReLU(), ops.ReLU(max_value=0.5), ops.ReLU(negative_slope=0.2), ops.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.3)],
)
def test_relu_follows_keras_definition(rng, op):
    x = rng.normal(size=(4, 10)).astype(np.float32)
    want = [[xi if xi >= op.threshold else op.negative_slope * (xi - op.threshold) for xi in row] for row in x]
    want = np.array(want)
    if op.max_value is not None:
        want = np.minimum(want, op.max_value)
    np.testing.assert_allclose(run_op(op, x), want, **TOL)


def test_structural_ops(rng):
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    t = run_op(ops.Transpose((1, 2, 0)), x)
    assert t.shape == (2, 4, 5, 3) and t[1, 2, 3, 0] == x[1, 0, 2, 3]
    r = run_op(ops.Reshape((60,)), x)
    assert r[1, 21] == x[1, 1, 0, 1]  # row-major: 21 = 1*20 + 0*5 + 1
    p = run_op(ops.Pad2d((1, 2, 0, 1), -3.0), x)
    assert p.shape == (2, 3, 5, 8) and p[0, 0, 0, 0] == -3.0 and p[0, 1, 1, 2] == x[0, 1, 0, 0]
    y = rng.normal(size=x.shape).astype(np.float32)
    np.testing.assert_allclose(run_op(ops.Add(), x, extra_inputs=[y]), x + y, **TOL)
    cat = run_op(ops.Concat(0), x, extra_inputs=[y])
    assert cat.shape == (2, 6, 4, 5) and np.array_equal(cat[:, 3:], y)
    s = run_op(ops.Softmax(), x[:, 0, 0])
    want = np.exp(x[:, 0, 0]) / np.exp(x[:, 0, 0]).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(s, want, **TOL)


def test_batching_does_not_change_results(rng):
    x = rng.normal(size=(37, 2, 6, 6)).astype(np.float32)
    w = rng.normal(size=(3, 2, 3, 3)).astype(np.float32)
    b = GraphBuilder("batch")
    v = b.input("input", (2, 6, 6))
    v = b.add(ops.Conv2d(3, (3, 3)), [v], {"weight": w, "bias": np.zeros(3)})
    b.output(v)
    g = b.build()
    whole = interpreter.run(g, x, batch_size=64)["output"]
    pieces = interpreter.run(g, x, batch_size=5)["output"]
    assert np.array_equal(whole, pieces)


def test_input_shape_is_checked(rng):
    b = GraphBuilder("shape")
    b.output(b.input("input", (3,)))
    with pytest.raises(DataError, match=r"input %input expects examples of shape \[3\], got data of shape \[2, 4\]"):
        interpreter.run(b.build(), np.zeros((2, 4)))
