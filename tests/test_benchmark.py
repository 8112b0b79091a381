"""The peer benchmark (attendnext_keras.experiments.benchmark and benchmark_report; `attendnext benchmark`) end to
end on tiny settings.

One run (AttendNeXt micro and MobileOne-S1, the quickest peer to convert, at 64 px, 10 classes, 5 timed runs,
1 thread; MobileOne-S1 as the reference) feeds every test of the report; the verdict logic and the Pareto front are
also checked on hand-made numbers.
"""

import json
import math

import pytest

from attendnext_keras import registry
from attendnext_keras.cli import main
from attendnext_keras.config import BenchmarkConfig
from attendnext_keras.experiments import benchmark, benchmark_report

MODELS = ["attendnext_micro", "mobileone_s1"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    config = BenchmarkConfig(models=tuple(MODELS), runs=5, threads=(1,), input_size=64, classes=10, warmup=2,
                             calibration_images=4)
    result = benchmark.run_benchmark(config, references=("mobileone_s1",), out_dir=out / "plain")
    plain = benchmark_report.write_reports(result)
    accuracies = out / "accuracies.json"
    accuracies.write_text(json.dumps({"attendnext_micro": 0.61, "mobileone_s1": {"top1": 0.58}, "not_run": 0.5}))
    with_acc = benchmark_report.write_reports(result, out / "acc", accuracies=accuracies)
    return result, plain, with_acc


def test_json_has_every_field_with_sane_numbers(run):
    FORMATS = benchmark.FORMATS
    result, plain, _ = run
    data = json.loads(open(plain["json"]).read())
    assert list(data["models"]) == MODELS
    for key in ("platform", "cpu_model", "cpu_count", "date", "command", "cpu_flags", "load_average"):
        assert data["machine"][key], key
    assert data["machine"]["versions"]["tensorflow"] and data["machine"]["versions"]["ai-edge-litert"]
    assert data["settings"]["threads"] == [1] and data["settings"]["runs"] == 5
    for name, row in data["models"].items():
        assert row["input_size"] == 64 and row["same_resolution"]
        assert row["params"] > 0 and row["macs"] > 0
        for fmt in FORMATS:
            f = row["formats"][fmt]
            assert f["tflite_bytes"] > f["weight_bytes"] > 0 and f["partitions"] >= 1, (name, fmt)
            lat = f["latency_ms"]["1"]
            assert lat["runs"] == len(lat["samples"]) >= 5
            assert 0 < lat["min"] <= lat["median"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert row["formats"]["int8"]["tflite_bytes"] < row["formats"]["float32"]["tflite_bytes"]
        best = row["best"]["1"]
        assert best["median"] == min(row["formats"][f]["latency_ms"]["1"]["median"] for f in FORMATS)
        assert row["formats"][best["format"]]["latency_ms"]["1"]["median"] == best["median"]
    assert data["models"]["mobileone_s1"]["formats"]["int8"]["partitions"] == 1  # convolutions and ReLU only
    assert data["references"] == ["mobileone_s1"] and data["claim_subject"] == "attendnext_micro"


def test_ratios_are_latency_and_size_quotients(run):
    result, plain, _ = run
    data = json.loads(open(plain["json"]).read())
    an, fb = data["models"]["attendnext_micro"], data["models"]["mobileone_s1"]
    comparison = data["comparisons"]["attendnext_micro"]["mobileone_s1"]
    assert comparison == an["relative_to"]["mobileone_s1"]
    speedup = comparison["speedup"]["1"]
    for fmt in ("float32", "int8"):
        expected = fb["formats"][fmt]["latency_ms"]["1"]["median"] / an["formats"][fmt]["latency_ms"]["1"]["median"]
        assert math.isclose(speedup[fmt], expected, rel_tol=1e-9)
    assert math.isclose(speedup["best"], fb["best"]["1"]["median"] / an["best"]["1"]["median"], rel_tol=1e-9)
    assert math.isclose(comparison["params_ratio"], fb["params"] / an["params"], rel_tol=1e-9)
    assert fb["relative_to"]["mobileone_s1"]["speedup"]["1"]["best"] == 1.0
    claims = {(c["peer"], c["kind"]): c for c in data["claims"]}
    mobileone = claims[("mobileone_s1", "speed")]
    assert mobileone["measured"] == {"1": speedup["best"]}
    assert mobileone["verdict"] == ("holds" if speedup["best"] > 10 else "does not hold yet")
    assert claims[("fbnet_c", "speed")]["verdict"] == "not measured (peer not in this run)"
    assert claims[("ofa_62", "speed")]["verdict"].startswith("not measured (not rebuilt)")
    assert claims[("mobilenet_v3_large", "size")]["verdict"] == "not measured (peer not in this run)"


def test_markdown_has_a_row_per_model_and_the_verdicts(run):
    DISPLAY_NAMES = {name: registry.display_name(name) for name in MODELS}
    result, plain, _ = run
    md = open(plain["md"]).read()
    for name in MODELS:
        assert md.count(f"| {DISPLAY_NAMES[name]} |") >= 2, name  # models table and latency table
    assert "## The paper's claims" in md
    for claim in ("> 6× faster than MobileNetV3-L", "> 10× faster than FBNet-C", "> 10× faster than MobileOne-S1",
                  "~4× faster than MobileViT-XS", "> 1.37× smaller than MobileNetV3-L", "OFA-62"):
        assert claim in md
    assert "holds" in md and "not measured" in md
    assert "## Relative to MobileOne-S1" in md
    slowest = max(MODELS, key=lambda n: result["models"][n]["best"]["1"]["median"])
    assert f"throughput relative to **{DISPLAY_NAMES[slowest]}** (the slowest model" in md
    assert "Accuracy–latency plot skipped: no accuracies given" in md
    assert result["machine"]["cpu_model"] in md and result["machine"]["command"] in md
    assert "not a comparison at equal accuracy" in md


def test_plots_are_png_files_and_pareto_needs_accuracies(run):
    result, plain, with_acc = run
    assert "pareto" not in plain
    for path in (plain["png"], with_acc["png"], with_acc["pareto"]):
        data = open(path, "rb").read()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, path
    md = open(with_acc["md"]).read()
    assert "![Accuracy against latency](pareto.png)" in md and "skipped" not in md
    data = json.loads(open(with_acc["json"]).read())
    assert data["accuracies"] == {"attendnext_micro": 0.61, "mobileone_s1": 0.58, "not_run": 0.5}
    assert result["accuracies"] is None  # write_reports does not change the run's result


def test_reports_can_be_rewritten_from_the_json_with_accuracies(run, tmp_path):
    _, plain, _ = run
    accuracies = tmp_path / "acc.json"
    accuracies.write_text(json.dumps({"attendnext_micro": 55.0}))
    assert main(["benchmark", "--from-json", plain["json"], "--accuracies", str(accuracies),
                 "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "peers.json").read_text())
    assert (tmp_path / "again" / "pareto.png").read_bytes()[:8] == PNG_MAGIC
    assert again["accuracies"] == {"attendnext_micro": 55.0}
    assert again["models"] == json.loads(open(plain["json"]).read())["models"]


def test_unknown_model_names_are_refused_before_anything_runs():
    with pytest.raises(ValueError, match=r"Unknown model 'resnet50'\. Known models: attendnext_base"):
        benchmark.run_benchmark(BenchmarkConfig(models=("attendnext_micro", "resnet50"), runs=5))
    assert benchmark.resolve_models(None) == registry.list_models()
    assert benchmark.resolve_models(["fbnet_c", "fbnet_c", "attendnext_base"]) == ["fbnet_c", "attendnext_base"]
    assert benchmark.model_input_size("attendnext_micro") == 96
    assert benchmark.model_input_size("attendnext_small") == 224
    assert benchmark.model_input_size("mobilenet_v3_small_075") == 224
    assert benchmark.model_input_size("attendnext_micro", 64) == 64
    with pytest.raises(ValueError, match="Accuracy of .fbnet_c. must be a number"):
        benchmark.load_accuracies({"fbnet_c": "high"})


def test_verdicts_and_pareto_front_on_given_numbers():
    from attendnext_keras.experiments.reports import latency_accuracy_front

    def speed(best):
        return {t: {"best": v, "float32": v, "int8": v} for t, v in best.items()}

    result = {"claim_subject": "attendnext_base", "settings": {"threads": [1, 2]}, "comparisons": {"attendnext_base": {
        "mobilenet_v3_large": {"speedup": speed({"1": 6.5, "2": 5.0}), "params_ratio": 2.1},
        "fbnet_c": {"speedup": speed({"1": 11.0, "2": 10.5}), "params_ratio": 2.0},
        "mobilevit_xs": {"speedup": speed({"1": 3.0, "2": 2.0}), "params_ratio": 0.9}}}}
    verdicts = {(c["peer"], c["kind"]): c["verdict"] for c in benchmark.evaluate_claims(result)}
    assert verdicts[("mobilenet_v3_large", "speed")] == "holds at 1 thread(s) only"
    assert verdicts[("fbnet_c", "speed")] == "holds"
    assert verdicts[("mobilevit_xs", "speed")] == "does not hold yet"
    assert verdicts[("mobilenet_v3_large", "size")] == "holds"
    assert verdicts[("mobileone_s1", "speed")] == "not measured (peer not in this run)"
    # (latency, accuracy): the 2nd is slower and worse than the 1st; the 4th is the fastest.
    assert latency_accuracy_front([(1.0, 70), (2.0, 65), (3.0, 75), (0.5, 60)]) == [3, 0, 2]


def test_cli_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["benchmark", "--help"])
    out = capsys.readouterr().out
    for flag in ("--models", "--runs", "--threads", "--warmup", "--block", "--input-size", "--data", "--accuracies",
                 "--out", "--classes", "--calibration-count", "--list", "--from-json", "--config"):
        assert flag in out
