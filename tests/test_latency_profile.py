"""Where the time goes (attendnext_keras.deploy.latency_profile): stage cuts follow the builder's names, the stages
add up to the whole model's latency, and the peak probe measures a real MAC rate."""

import pytest

import attendnext_keras as an
from attendnext_keras.deploy import latency_profile as lp


@pytest.fixture(scope="module")
def micro():
    return an.create_model("attendnext_micro", input_size=64, classes=5)


def test_stage_cuts_hand_each_stage_what_the_next_reads(micro):
    cuts = lp.stage_cuts(micro)
    assert [group for group, _ in cuts] == ["stem", "stage1", "stage2", "stage3", "stage4"]
    shapes = {group: [tuple(t.shape[1:]) for t in tensors] for group, tensors in cuts}
    assert shapes["stem"] == [(32, 32, 8)]
    assert shapes["stage1"] == [(16, 16, 8)] * 3  # three independent columns (merge "none") go on to stage 2
    assert shapes["stage4"] == [(2, 2, 112)]


def test_stages_add_up_to_the_whole_model(tiny_spec_file, capsys):
    """Through the CLI (`attendnext profile --latency --json`) on the tests' tiny AttendNeXt (its 4 stages cut the
    same way as micro's; six int8 conversions of it take half the time of micro's)."""
    import json

    from attendnext_keras.cli import main

    assert main(["profile", "--arch", tiny_spec_file, "--input-size", "32", "--classes", "5", "--latency", "--runs",
                 "30", "--float32", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    profile = result["latency"]
    stages = profile["stages"]
    assert [s["stage"] for s in stages] == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    # Stage times are differences of truncated models' medians, so they add up to the whole by construction; what
    # can fail is the timing: a truncated model slower than the whole, or a stage clearly negative.
    total = profile["total_ms"]
    assert profile["sum_of_stages_ms"] == pytest.approx(total)
    int8_cuts = {k: ms for k, ms in profile["cut_ms"].items() if not k.startswith("float32:")}
    assert all(ms <= 1.15 * total + 0.02 for ms in int8_cuts.values()), profile["cut_ms"]
    assert all(s["ms"] >= -0.1 * total - 0.01 for s in stages), stages
    assert sum(s["macs"] for s in stages) == result["macs"] > 0
    assert profile["peak_gmacs"] > 1 and profile["threads"] == 1  # a 1×1 int8 conv runs at > 1 GMAC/s on any core
    # float32 timed in the same rounds: its stages add up to its whole model as well, and int8 ÷ float32 is theirs
    assert sum(s["float32_ms"] for s in stages) == pytest.approx(profile["float32_total_ms"])
    assert profile["int8_vs_float32"] == pytest.approx(total / profile["float32_total_ms"])
    assert profile["float32_peak_gmacs"] > 1
    text = lp.format_profile(profile)
    assert "stage1" in text and "GMAC/s" in text and "of peak" in text and "int8/fp32" in text


def test_instruction_profiles_count_every_cut_once_per_core_and_add_up(monkeypatch):
    """The Arm instruction profile cuts and converts once, counts each cut on each core, and its stages add up to
    the whole model exactly (counts have no noise). The emulator is replaced by a stand-in that counts 1000
    instructions per flatbuffer byte, so that this runs without QEMU (tests/test_arm_cpu.py covers the real one)."""
    from conftest import tiny_model

    counted = []

    def count(blob, cpu, invokes):
        counted.append((cpu, len(blob)))
        return {"per_inference": 1000 * len(blob)}

    monkeypatch.setattr(lp.arm_cpu, "count_instructions", count)
    model = tiny_model()
    a72, a76 = lp.instruction_profiles(model, cpus=("cortex-a72", "cortex-a76"), float32=True)
    cuts = len(lp.stage_cuts(model)) + 1  # and the whole model
    assert [c for c, _ in counted] == ["cortex-a72"] * 2 * cuts + ["cortex-a76"] * 2 * cuts  # int8, float32 of each
    sizes = [n for _, n in counted]  # stem int8, stem float32, stage1 int8, …
    assert (a72["cpu"], a76["cpu"]) == ("cortex-a72", "cortex-a76") and a72["stages"] == a76["stages"]
    stages = a72["stages"]
    assert [s["stage"] for s in stages] == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    assert sum(s["m_instructions"] for s in stages) == pytest.approx(a72["total_m_instructions"])
    assert sum(s["float32_m_instructions"] for s in stages) == pytest.approx(a72["float32_total_m_instructions"])
    assert a72["float32_total_m_instructions"] > a72["total_m_instructions"]  # float32 weights: 4 bytes each
    assert sum(s["share"] for s in stages) == pytest.approx(1.0)
    # a stage is the difference of two cuts: here 1000 instructions per byte the stage adds to the flatbuffer
    assert stages[1]["m_instructions"] == pytest.approx((sizes[2] - sizes[0]) * 1000 / 1e6)
    assert stages[1]["float32_m_instructions"] == pytest.approx((sizes[3] - sizes[1]) * 1000 / 1e6)
    header, rows = lp.instruction_rows(a72)
    assert header[-1] == "int8 ÷ float32" and [r[0] for r in rows] == [s["stage"] for s in stages] + ["total"]
    assert rows[-1][2] == f"{a72['total_m_instructions']:.2f}"
    assert rows[-1][-1] == f"{a72['total_m_instructions'] / a72['float32_total_m_instructions']:.2f}"
