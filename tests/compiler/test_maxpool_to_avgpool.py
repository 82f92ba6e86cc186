"""maxpool_to_avgpool: before/expected IR, the report, and what the replacement computes."""

import numpy as np

from pass_testing import assert_ir, notes
from snnc.compiler import interpreter
from snnc.compiler.passes import PassManager
from snnc.compiler.passes.maxpool import maxpool_to_avgpool
from snnc.compiler.text import parse

BEFORE = """
graph @g : float {
  %x = input() {shape=[1,3,3]} : f32[1,3,3]
  %r = relu(%x) : f32[1,3,3]
  %pool = max_pool2d(%r) {kernel=[2,2], stride=[2,2], pads=[0,0,1,1]} : f32[1,2,2]
  %output = output(%pool) : f32[1,2,2]
}
"""


def test_max_pool_becomes_average_pool_and_is_reported():
    after = maxpool_to_avgpool(parse(BEFORE))
    assert_ir(after, """
    graph @g : float {
      %x = input() {shape=[1,3,3]} : f32[1,3,3]
      %r = relu(%x) : f32[1,3,3]
      %pool = avg_pool2d(%r) {kernel=[2,2], stride=[2,2], pads=[0,0,1,1]} : f32[1,2,2]
      %output = output(%pool) : f32[1,2,2]
    }
    """)
    message = "max pooling 2x2 replaced by average pooling (the target cannot gate spikes); accuracy may drop"
    assert notes(after) == [("pool", message)]


def test_the_replacement_averages_the_real_elements_of_each_window():
    x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    got = interpreter.run(maxpool_to_avgpool(parse(BEFORE)), x)["output"][0, 0]
    # windows: [0,1,3,4], [2,5], [6,7], [8]; padding is not counted
    np.testing.assert_array_equal(got, [[2.0, 3.5], [6.5, 8.0]])


def test_the_avgpool_pipeline_replaces_max_pooling_before_conversion(rng):
    x = rng.uniform(0, 1, (4, 1, 3, 3)).astype(np.float32)
    snn, records = PassManager("avgpool").run(parse(BEFORE), calibration=x)
    passes = [r.spec.name for r in records]
    assert passes.index("maxpool_to_avgpool") < passes.index("convert_to_spiking")
    assert {n.op.NAME for n in snn.nodes} >= {"avg_pool2d", "if_neuron"}
    assert "spike_max_pool2d" not in {n.op.NAME for n in snn.nodes}
