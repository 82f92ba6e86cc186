"""The pass manager (pipelines, verification after each pass, instruments, errors) and
pipeline strings with typed options."""

import io
import re

import numpy as np
import pytest

from pass_testing import op_names
from snnc.compiler.errors import PassError, SnncError, VerificationError
from snnc.compiler.graph import Graph
from snnc.compiler.passes import PASSES, PassManager, PassSpec, PipelineError, format_timings, parse_pipeline
from snnc.compiler.passes.registry import PassInfo, register_pass
from snnc.compiler.text import load, parse, print_graph
from snnc.compiler.types import TensorType

NET = """
graph @net : float {
  %x = input() {shape=[2]} : f32[2]
  %d = dense(%x) {units=2, weight=<2x2 f32 = [1,0,0,1]>, bias=<2 f32 = [0,0]>} : f32[2]
  %bn = batch_norm(%d) {epsilon=0.0, gamma=<2 f32 = [2,1]>, beta=<2 f32 = [0,0]>, mean=<2 f32 = [0,0]>, var=<2 f32 = [1,1]>} : f32[2]
  %r = relu(%bn) : f32[2]
  %logits = dense(%r) {units=2, weight=<2x2 f32 = [1,1,1,-1]>, bias=<2 f32 = [0,0]>} : f32[2]
  %sm = softmax(%logits) : f32[2]
  %output = output(%sm) : f32[2]
}
"""
RATE = ["canonicalize", "fold_batchnorm", "threshold_balance", "convert_to_spiking"]  # the rate pipeline


@pytest.fixture
def net():
    return parse(NET)


@pytest.fixture
def calibration(rng):
    return rng.uniform(-1, 1, (16, 2)).astype(np.float32)


# ----------------------------------------------------------------------------- running


def test_named_pipeline_runs_its_passes_in_order(net, calibration):
    manager = PassManager("rate")
    assert manager.needs_calibration
    result, records = manager.run(net, calibration=calibration)
    assert [r.spec.name for r in records] == RATE
    assert result.stage == "spiking"
    assert op_names(result) == ["input", "dense", "if_neuron", "dense", "readout", "output"]
    # softmax removed, batch norm folded, nothing added by balancing, readout inserted
    assert [(r.nodes_before, r.nodes_after) for r in records] == [(7, 6), (6, 5), (5, 5), (5, 6)]
    assert all(r.seconds >= 0 and r.graph is None for r in records)
    assert records[2].to_dict()["options"] == {}
    assert set(records[0].to_dict()) == {"pass", "options", "seconds", "nodes_before", "nodes_after", "notes"}


def test_float_pipeline_needs_no_calibration(net):
    manager = PassManager("float")
    assert not manager.needs_calibration
    result, records = manager.run(net)
    assert [r.spec.name for r in records] == ["canonicalize", "fold_batchnorm"]
    assert result.stage == "float" and "batch_norm" not in op_names(result)


def test_pipeline_options_reach_the_passes(net, calibration):
    pipeline = "canonicalize{keep_softmax=true},fold_batchnorm,threshold_balance{method=percentile,p=99.9}"
    result, records = PassManager(pipeline).run(net, calibration=calibration)
    assert "softmax" in op_names(result)
    assert result.meta["threshold_balance"]["p"] == 99.9
    assert records[2].to_dict()["options"] == {"method": "percentile", "p": 99.9}


def test_parsed_specs_are_accepted(net):
    result, _ = PassManager([PassSpec("canonicalize", {"keep_softmax": True})]).run(net)
    assert "softmax" in op_names(result)


def test_the_callers_graph_is_not_changed(net, calibration):
    PassManager("default").run(net, calibration=calibration)
    assert net == parse(NET)


def test_calibration_is_required_where_a_pass_needs_it(net):
    with pytest.raises(PassError, match=r"pass threshold_balance needs calibration data"):
        PassManager("default").run(net)


def test_the_input_graph_is_verified_first(net):
    broken = net.replace(nodes=[n.replace(type=TensorType((3,))) if n.name == "r" else n for n in net.nodes])
    with pytest.raises(VerificationError, match=r"%r = relu: type is f32\[3\] but the op gives f32\[2\]"):
        PassManager("float").run(broken)


def _break_relu_type(graph: Graph) -> Graph:
    """A buggy pass: returns a graph whose relu has the wrong type."""
    return graph.replace(nodes=[n.replace(type=TensorType((3,))) if n.name == "r" else n for n in graph.nodes])


def test_the_graph_is_verified_after_each_pass(net, monkeypatch):
    monkeypatch.setitem(PASSES, "break_types", PassInfo("break_types", _break_relu_type, {}, False))
    with pytest.raises(PassError) as info:
        PassManager("canonicalize,fold_batchnorm,break_types").run(net)
    assert str(info.value) == (
        "pass break_types failed: %r = relu: type is f32[3] but the op gives f32[2] "
        "(passes run before it: canonicalize, fold_batchnorm)"
    )
    assert isinstance(info.value.__cause__, VerificationError)


def test_a_failing_pass_names_itself_the_node_and_the_passes_before(net):
    with pytest.raises(PassError) as info:
        PassManager("canonicalize,convert_to_spiking").run(net)
    assert str(info.value) == (
        "pass convert_to_spiking failed: %bn = batch_norm: has no spiking form; run fold_batchnorm "
        "before convert_to_spiking (passes run before it: canonicalize)"
    )
    first = r"pass convert_to_spiking failed: %bn = batch_norm: .* \(passes run before it: none\)"
    with pytest.raises(PassError, match=first):
        PassManager("convert_to_spiking").run(net)


@pytest.mark.parametrize(
    "pipeline, message",
    [
        ("float,threshold_balance{method=mean}",
         r"pass threshold_balance failed: option method='mean' is not one of max, percentile "
         r"\(passes run before it: canonicalize, fold_batchnorm\)"),
        ("float,threshold_balance{p=0}", r"pass threshold_balance failed: option p=0.0 must be in \(0, 100\]"),
        ("float,convert_to_spiking{neuron=foo}",
         r"pass convert_to_spiking failed: option neuron='foo' is not one of bistable, if, lif"),
        ("float,convert_to_spiking{max_rate=2}",
         r"option max_rate=2.0: an integrate-and-fire neuron fires at most once per step"),
    ],
)
def test_bad_option_values_fail_with_the_pass_named(net, calibration, pipeline, message):
    with pytest.raises(PassError, match=message):
        PassManager(pipeline).run(net, calibration=calibration)


# ----------------------------------------------------------------------------- instruments


def test_dump_after_named_passes(net, calibration):
    stream = io.StringIO()
    pipeline = "float,threshold_balance{method=max}"
    manager = PassManager(pipeline, dump_after=["fold_batchnorm", "threshold_balance"], stream=stream)
    result, records = manager.run(net, calibration=calibration)
    text = stream.getvalue()
    headers = re.findall(r"^# IR after .*$", text, re.M)
    assert headers == ["# IR after fold_batchnorm", "# IR after threshold_balance{method=max}"]
    folded = text.split("# IR after threshold_balance{method=max}\n")[0].split("# IR after fold_batchnorm\n")[1]
    assert "batch_norm" not in folded and folded.startswith("graph @net : float")
    assert text.endswith(print_graph(result))


def test_dump_after_all(net, calibration):
    stream = io.StringIO()
    PassManager("rate", dump_after=["all"], stream=stream).run(net, calibration=calibration)
    assert re.findall(r"^# IR after (\w+)", stream.getvalue(), re.M) == RATE


def test_dump_after_an_unknown_pass_is_an_error():
    with pytest.raises(PipelineError, match=r"--dump-after fold_bn: no such pass; passes: canonicalize, "):
        PassManager("float", dump_after=["fold_bn"])


def test_dump_dir_writes_one_numbered_file_per_pass(net, calibration, tmp_path):
    folder = tmp_path / "dumps"
    manager = PassManager("rate", dump_dir=folder, keep_graphs=True)
    result, records = manager.run(net, calibration=calibration)
    names = ["00_input", "01_canonicalize", "02_fold_batchnorm", "03_threshold_balance", "04_convert_to_spiking"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}{ext}" for n in names for ext in (".ir", ".npz"))
    assert load(folder / "00_input.ir") == net
    for name, record in zip(names[1:], records):
        assert load(folder / f"{name}.ir") == record.graph
    assert records[-1].graph == result


def test_time_passes_prints_a_table(net, calibration):
    stream = io.StringIO()
    _, records = PassManager("rate", time_passes=True, stream=stream).run(net, calibration=calibration)
    text = stream.getvalue()
    assert text == format_timings(records)
    lines = text.splitlines()
    assert lines[0] == "# pass timings" and lines[-1].endswith("100.0%               total")
    assert [line.split()[-1] for line in lines[2:-1]] == RATE
    assert "7->6" in lines[2] and "5->6" in lines[5]


def test_notes_reach_the_records_and_the_callback(net, calibration):
    seen = []
    _, records = PassManager("rate", on_note=seen.append).run(net, calibration=calibration)
    assert seen == [note for r in records for note in r.notes]
    assert [(n["pass"], n["node"]) for n in seen] == [("canonicalize", "sm")]


# ----------------------------------------------------------------------------- pipeline strings


def test_pipeline_string_with_typed_options():
    specs = parse_pipeline(
        "canonicalize, threshold_balance{method=percentile,p=99.9} ,convert_to_spiking{max_rate=1,neuron=lif}"
    )
    assert specs == [
        PassSpec("canonicalize"),
        PassSpec("threshold_balance", {"method": "percentile", "p": 99.9}),
        PassSpec("convert_to_spiking", {"max_rate": 1.0, "neuron": "lif"}),
    ]
    assert type(specs[2].options["max_rate"]) is float
    assert str(specs[1]) == "threshold_balance{method=percentile,p=99.9}"
    assert parse_pipeline(",".join(map(str, specs))) == specs


@pytest.mark.parametrize(
    "text, options",
    [
        ("lower_loihi{adapt=true,dt=0.002}", {"adapt": True, "dt": 0.002}),
        ("lower_loihi{adapt=FALSE}", {"adapt": False}),
        ("lower_loihi{adapt=1, vmin = -1}", {"adapt": True, "vmin": -1.0}),
        ("threshold_balance{per_channel=auto, batch_size = 16}", {"per_channel": "auto", "batch_size": 16}),
        ("canonicalize{keep_softmax=0}", {"keep_softmax": False}),
        ("canonicalize{}", {}),
    ],
)
def test_option_types(text, options):
    (spec,) = parse_pipeline(text)
    assert spec.options == options
    assert all(type(v) is type(options[k]) for k, v in spec.options.items())


def test_named_pipelines_expand_in_place():
    assert [s.name for s in parse_pipeline("rate")] == RATE
    assert [str(s) for s in parse_pipeline("default")] == [
        "canonicalize", "fold_batchnorm", "threshold_balance{per_channel=auto}", "convert_to_spiking",
        "calibrate{mode=potential,timesteps=16}",
    ]
    assert [s.name for s in parse_pipeline("float,threshold_balance{method=max}")] == [
        "canonicalize", "fold_batchnorm", "threshold_balance"
    ]
    assert "maxpool_to_avgpool" in [s.name for s in parse_pipeline("loihi")]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", r"empty pipeline; passes: canonicalize, "),
        ("canonicalise", r"unknown pass 'canonicalise'; passes: canonicalize, .*; pipelines: default, rate, .*, loihi, float"),
        ("threshold_balance{q=1}",
         r"pass threshold_balance: unknown option 'q=1'; options: method \(str, default percentile\), "
         r"p \(float, default 99.9\), per_channel \(str, default false\), batch_size \(int, default 256\)"),
        ("fold_batchnorm{method=max}", r"pass fold_batchnorm: unknown option 'method=max'; options: none"),
        ("threshold_balance{method}", r"pass threshold_balance: option method needs a value \(method=...\)"),
        ("threshold_balance{p=high}", r"pass threshold_balance: option p='high' is not a float"),
        ("threshold_balance{batch_size=1.5}", r"pass threshold_balance: option batch_size='1.5' is not an int"),
        ("canonicalize{keep_softmax=yes}", r"pass canonicalize: option keep_softmax='yes' is not a bool"),
        ("default{method=max}", r"pipeline default takes no options; give them to its passes"),
        ("canonicalize{keep_softmax=true", r"cannot parse the pipeline at 'canonicalize\{keep_softmax=true'"),
        ("canonicalize;fold_batchnorm", r"cannot parse the pipeline at 'canonicalize;fold_batchnorm'"),
    ],
)
def test_pipeline_errors(text, message):
    with pytest.raises(PipelineError, match=message) as info:
        parse_pipeline(text)
    assert isinstance(info.value, SnncError)  # the CLI reports it as one line, exit status 2


def test_pass_options_need_a_type_and_a_default():
    def untyped(graph, *, level=1):
        return graph

    with pytest.raises(TypeError, match="pass untyped: option level needs a default and a str/int/float/bool type"):
        register_pass("untyped")(untyped)
    assert "untyped" not in PASSES


def test_registered_passes_state_their_options():
    info = PASSES["threshold_balance"]
    assert info.needs_calibration
    assert info.options == {
        "method": (str, "percentile"),
        "p": (float, 99.9),
        "per_channel": (str, "false"),
        "batch_size": (int, 256),
    }
    assert info.summary.startswith("Scale each ReLU layer")
    assert not PASSES["convert_to_spiking"].needs_calibration
