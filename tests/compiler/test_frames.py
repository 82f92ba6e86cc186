"""Frame sequences for feed-forward graphs: as_frames changes only inputs and outputs, the
float interpreter then gives the graph's output on each frame (reference: the graph run on
every frame alone), and the rule telling frames from single inputs."""

import numpy as np
import pytest

from snnc.compiler import interpreter, ops
from snnc.compiler.errors import DataError, SnncError
from snnc.compiler.frames import as_frames, choose_frames, is_frames, one_frame
from snnc.compiler.graph import GraphBuilder
from snnc.compiler.text import load, save
from snnc.compiler.types import TensorType


def cnn(rng):
    b = GraphBuilder("cnn")
    x = b.input("image", (1, 6, 6), source_layout="HWC")
    c = b.add(ops.Conv2d(3, (3, 3)), [x], {"weight": rng.normal(0, 0.5, (3, 1, 3, 3)), "bias": rng.normal(0, 0.1, 3)})
    h = b.add(ops.Dense(4), [b.add(ops.Reshape((48,)), [b.add(ops.ReLU(), [c])])],
              {"weight": rng.normal(0, 0.3, (4, 48)), "bias": np.zeros(4)})
    b.output(h)
    return b.build()


def test_as_frames_changes_only_inputs_and_outputs(rng, tmp_path):
    graph = cnn(rng)
    framed = as_frames(graph)
    assert is_frames(framed) and not is_frames(graph) and framed.sequence
    assert [n.type for n in framed.nodes] == [n.type for n in graph.nodes]
    assert [n.params for n in framed.nodes] == [n.params for n in graph.nodes]
    assert framed.outputs[0].op.sequence is False and as_frames(framed, every_step=True).outputs[0].op.sequence
    assert load(save(framed, tmp_path / "f.ir")) == framed  # the mark survives the text format


@pytest.mark.parametrize("every_step", [True, False])
def test_the_float_graph_runs_on_every_frame(rng, every_step):
    graph = cnn(rng)
    x = rng.uniform(0, 1, (5, 4, 1, 6, 6)).astype(np.float32)
    (got,) = interpreter.run(as_frames(graph, every_step), {"image": x}).values()
    per_frame = np.stack([next(iter(interpreter.run(graph, {"image": x[:, k]}).values())) for k in range(4)], axis=1)
    np.testing.assert_allclose(got, per_frame if every_step else per_frame[:, -1], rtol=1e-6, atol=1e-6)


def test_a_recurrent_graph_is_refused(rng):
    b = GraphBuilder("rnn")
    x = b.input("x", (2,), sequence=True)
    d = b.delay(TensorType((2,)))
    h = b.add(ops.ReLU(), [b.add(ops.Add(), [x, d])])
    b.close_delay(d, h)
    b.output(h)
    with pytest.raises(SnncError, match="takes sequences itself"):
        as_frames(b.build())


WANT = (8, 8, 1)


@pytest.mark.parametrize("shape, option, frames, note", [
    ((5, 8, 8, 1), None, False, None),            # the model's input exactly
    ((5, 8, 8), None, False, None),               # a size-1 axis added: MNIST's rule
    ((5, 3, 8, 8, 1), None, True, "taken as 5 sequences of 3 frames"),
    ((5, 3, 8, 8), None, True, "taken as 5 sequences of 3 frames"),
    ((5, 1, 8, 8), None, False, "taken as single inputs (give --frames"),  # both fit: said
    ((5, 1, 8, 8), True, True, None),
    ((5, 3, 8, 8, 1), False, False, None),        # refused when fitted (compiled for single inputs)
])
def test_the_rule_telling_frames_from_single_inputs(shape, option, frames, note):
    got, said = choose_frames(shape, WANT, option, "d.npz")
    assert got is frames
    assert (said is None) if note is None else (note in said and said.startswith("d.npz: "))


def test_data_fitting_neither_way_are_refused():
    with pytest.raises(DataError, match=r"examples of shape \[3, 2, 8, 8, 1\] do not fit the model's input \[8, 8, 1\], nor do \[2, 8, 8, 1\] as frames of sequences \(N, steps, 8, 8, 1\)"):
        choose_frames((5, 3, 2, 8, 8, 1), WANT, None, "d.npz")


def test_single_inputs_for_a_frames_network_are_one_frame_sequences():
    x = np.zeros((5, 8, 8))
    got, note = one_frame(x, WANT, "d.npz")
    assert got.shape == (5, 1, 8, 8) and "taken as sequences of one frame" in note
    frames = np.zeros((5, 3, 8, 8, 1))
    assert one_frame(frames, WANT, "d.npz") == (frames, None)
