"""The emulated Arm cores (`deploy.arm_cpu`): what the plugin's log means, the command that runs it, and the errors a
machine without the set-up gets. The counts themselves come from benchmarks/bench_arm_cpu.py (QEMU is not in CI); the
last test counts a real model where `tools/setup_arm_cpu.sh` has been run."""

import os

import pytest

from attendnext_keras.deploy import arm_cpu


def test_marks_in_label_order_give_each_invoke():
    log = "mark 1 250\nsome other plugin line\nmark 0 100\nmark 2 400\n"
    assert arm_cpu.parse_marks(log) == [100, 250, 400]


@pytest.mark.parametrize("log", ["", "mark 0 100\n", "mark 0 100\nmark 2 300\n"])
def test_missing_marks_are_an_error_naming_the_plugin(log):
    with pytest.raises(arm_cpu.EmulationError, match="arm_marks.c"):
        arm_cpu.parse_marks(log)


def test_cpuinfo_names_the_core_by_its_part_number():
    text = arm_cpu.cpuinfo_text("cortex-a72")
    assert "CPU part\t: 0xd08" in text and "CPU implementer\t: 0x41" in text and "asimddp" not in text
    assert "asimddp" in arm_cpu.cpuinfo_text("cortex-a76")  # the A76 has the dot-product instructions


def test_command_binds_cpuinfo_then_runs_qemu_with_the_core_and_plugin(tmp_path):
    emu = arm_cpu.Emulator(str(tmp_path), "/usr/bin/qemu-aarch64")
    argv = arm_cpu.command(emu, "cortex-a76", "/m.tflite", 3, "/tmp/cpuinfo", "/tmp/log")
    assert argv[:2] == ["unshare", "--mount"]
    qemu = argv.index("/usr/bin/qemu-aarch64")
    assert argv[qemu - 1] == "/tmp/cpuinfo" and "mount --bind" in argv[qemu - 2]
    assert argv[qemu + 1:qemu + 3] == ["-cpu", "cortex-a76"]
    assert argv[-3:] == ["/m.tflite", "3", str(arm_cpu.MARK_BASE)]
    assert os.path.join(str(tmp_path), "libmarks.so") in argv


def test_command_maps_a_user_to_root_in_the_namespace_when_not_root(tmp_path, monkeypatch):
    monkeypatch.setattr(arm_cpu.os, "geteuid", lambda: 1000)
    argv = arm_cpu.command(arm_cpu.Emulator(str(tmp_path), "qemu"), "cortex-a72", "/m", 1, "/c", "/l")
    assert argv[:3] == ["unshare", "--mount", "--map-root-user"]


def test_plugin_and_runner_agree_on_the_mark_encoding():
    """MARK_BASE is written in two languages: the C plugin must match it and keep 16 bits for the label."""
    from conftest import REPO

    source = (REPO / "tools" / "arm_marks.c").read_text()
    assert f"#define MARK_BASE {arm_cpu.MARK_BASE:#x}ULL" in source and "a2 & 0xffff" in source
    assert arm_cpu.MARK_BASE & 0xFFFF == 0 and 2 * arm_cpu.MAX_INVOKES - 1 <= 0xFFFF
    assert "#define LSEEK_AARCH64 62" in source  # lseek's number in the arm64 (asm-generic) syscall table


class FakeRun:
    """Stands in for subprocess.run: writes the marks log QEMU's plugin would write, returns an exit code."""

    def __init__(self, marks, returncode=0, stderr=""):
        self.marks, self.returncode, self.stderr, self.argv = marks, returncode, stderr, None

    def __call__(self, argv, **kwargs):
        self.argv, self.env = argv, kwargs["env"]
        log = argv[argv.index("-D") + 1]
        with open(log, "w") as f:
            f.writelines(f"mark {label} {count}\n" for label, count in enumerate(self.marks))
        return type("Done", (), {"returncode": self.returncode, "stdout": "output [1]\n", "stderr": self.stderr})()


@pytest.fixture
def fake_emulator(tmp_path, monkeypatch):
    for part in ("rootfs/usr/bin/python3.11", "site/ai_edge_litert/__init__.py", "libmarks.so"):
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / part).write_text("")
    monkeypatch.setattr(arm_cpu.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    return tmp_path


def test_each_invoke_is_its_pair_of_marks_and_the_median_is_reported(fake_emulator, monkeypatch):
    run = FakeRun([100, 350, 400, 600, 700, 1000])  # invokes of 250, 200 and 300 instructions
    monkeypatch.setattr(arm_cpu.subprocess, "run", run)
    counted = arm_cpu.count_instructions(b"tflite", cpu="cortex-a76", invokes=3, root=str(fake_emulator))
    assert counted == {"per_inference": 250, "invokes": [250, 200, 300], "output": "output [1]"}
    assert run.argv[run.argv.index("-cpu") + 1] == "cortex-a76"
    assert run.env["OPENBLAS_NUM_THREADS"] == "1" and "LD_PRELOAD" not in run.env  # one guest thread, clean env
    run = FakeRun([0, 10, 20, 50])  # two invokes: the lower middle one, a count that was measured
    monkeypatch.setattr(arm_cpu.subprocess, "run", run)
    assert arm_cpu.count_instructions(b"x", invokes=2, root=str(fake_emulator))["per_inference"] == 10


def test_emulated_failures_are_one_line_errors(fake_emulator, monkeypatch, tmp_path):
    monkeypatch.setattr(arm_cpu.subprocess, "run", FakeRun([], returncode=1, stderr="Traceback\nValueError: bad model"))
    with pytest.raises(arm_cpu.EmulationError, match=r"failed \(exit 1\): ValueError: bad model"):
        arm_cpu.count_instructions(b"x", root=str(fake_emulator))
    monkeypatch.setattr(arm_cpu.subprocess, "run", FakeRun([0, 5]))  # 1 invoke logged, 3 asked for
    with pytest.raises(arm_cpu.EmulationError, match="logged 2 marks for 3 invokes"):
        arm_cpu.count_instructions(b"x", invokes=3, root=str(fake_emulator))

    def too_slow(argv, **kwargs):
        raise arm_cpu.subprocess.TimeoutExpired(argv, 5)

    monkeypatch.setattr(arm_cpu.subprocess, "run", too_slow)
    with pytest.raises(arm_cpu.EmulationError, match="took over 5 s"):
        arm_cpu.count_instructions(b"x", root=str(fake_emulator), timeout=5)
    with pytest.raises(FileNotFoundError, match="No such model file"):
        arm_cpu.count_instructions(str(tmp_path / "missing.tflite"), root=str(fake_emulator))


def test_best_format_is_the_one_with_fewest_instructions():
    assert arm_cpu.best_format({"int8": {"per_inference": 9}, "float32": {"per_inference": 7}}) == ("float32", 7)


def test_without_the_set_up_the_error_says_what_is_missing_and_how_to_set_it_up(tmp_path):
    with pytest.raises(arm_cpu.EmulationError, match=r"missing .*the aarch64 Python.*setup_arm_cpu\.sh"):
        arm_cpu.emulator(str(tmp_path))


def test_bad_arguments_are_refused_before_running_anything(tmp_path):
    with pytest.raises(ValueError, match="Unknown Arm CPU 'cortex-m4'"):
        arm_cpu.count_instructions(b"", cpu="cortex-m4", root=str(tmp_path))
    with pytest.raises(ValueError, match="invokes must be between 1 and 32768"):
        arm_cpu.count_instructions(b"", invokes=0, root=str(tmp_path))


def _emulation_ready():
    try:
        arm_cpu.emulator()
        return True
    except arm_cpu.EmulationError:
        return False


@pytest.mark.skipif(not _emulation_ready(), reason="Arm CPU emulation not set up (tools/setup_arm_cpu.sh)")
def test_a_model_counts_the_same_every_invoke_and_fewer_with_sdot(rng):
    from conftest import tiny_model

    from attendnext_keras.deploy.conversion import to_tflite

    blob = to_tflite(tiny_model(), "int8-ptq", representative_data=[rng.uniform(0, 255, (4, 32, 32, 3))])
    a72 = arm_cpu.count_instructions(blob, cpu="cortex-a72", invokes=2)
    a76 = arm_cpu.count_instructions(blob, cpu="cortex-a76", invokes=2)
    assert a72["invokes"][0] == a72["invokes"][1] and a72["per_inference"] > 0
    assert a76["per_inference"] < a72["per_inference"]  # int8 GEMMs with SDOT instead of widening multiplies


def _bench():
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("bench_arm_cpu", REPO / "benchmarks" / "bench_arm_cpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_without_the_set_up_stops_with_one_line_before_converting(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ATTENDNEXT_ARM_CPU", str(tmp_path / "none"))
    with pytest.raises(SystemExit) as stop:
        _bench().main(["--models", "attendnext_micro", "--out", str(tmp_path)])
    assert stop.value.code == 2
    assert "Arm CPU emulation is not set up" in capsys.readouterr().err
    assert not (tmp_path / "arm_cpu.json").exists()


def test_bench_report_takes_each_models_best_format_and_ratios_to_mobilenet_v3_large():
    def row(model, int8, float32, float_stem=None):
        counts = {"int8": {"per_inference": int8}, "float32": {"per_inference": float32}}
        if float_stem:  # results written before int8-float-stem was counted lack it
            counts["int8-float-stem"] = {"per_inference": float_stem}
        return {"model": model, "display_name": model, "input_size": 224, "params": 1e6, "macs": 100e6,
                "counts": {"cortex-a72": counts}}

    result = {"machine": {"command": "python benchmarks/bench_arm_cpu.py"}, "cpus": ["cortex-a72"], "invokes": 3,
              "calibration_images": 32, "rows": [row("mobilenet_v3_large", 90e6, 80e6), row("ours", 20e6, 25e6),
                                                 row("stem", 30e6, 35e6, 16e6)]}
    lines = _bench().markdown(result).splitlines()
    ours = next(line for line in lines if line.startswith("| ours |"))
    assert "| 20.00 | 25.00 | — | 0.80 | 5.00 | int8 | 4.00× |" in ours  # 80 M (float32, its best) ÷ 20 M
    stem = next(line for line in lines if line.startswith("| stem |"))
    assert "| 30.00 | 35.00 | 16.00 | 0.86 | 3.33 | int8-float-stem | 5.00× |" in stem


def test_cli_profile_without_the_set_up_is_one_line(tiny_spec_file, tmp_path, monkeypatch, capsys):
    from attendnext_keras.cli import main

    monkeypatch.setenv("ATTENDNEXT_ARM_CPU", str(tmp_path / "none"))
    code = main(["profile", "--arch", tiny_spec_file, "--input-size", "32", "--classes", "5",
                 "--arm-cpu", "cortex-a72"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "Arm CPU emulation is not set up" in err[0]
