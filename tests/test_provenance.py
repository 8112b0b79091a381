"""attendnext_keras.provenance: what every result file records about where it was made."""

import re

from attendnext_keras import provenance


def test_machine_info_has_command_date_cpu_and_load():
    info = provenance.machine_info(command="python bench.py --x 1")
    assert info["command"] == "python bench.py --x 1"
    assert re.fullmatch(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", info["date"])
    assert info["cpu_model"] and info["cpu_count"] >= 1 and info["versions"]["numpy"]
    assert isinstance(info["cpu_flags"], list) and (info["load_average"] is None or len(info["load_average"]) == 3)
    line = provenance.describe(info)
    assert info["cpu_model"] in line and str(info["cpu_count"]) in line


def test_arm_boards_are_named_by_their_core():
    fields = {"Hardware": "BCM2711", "CPU part": "0xd08"}
    assert provenance.cpu_model(fields) == "BCM2711 (Cortex-A72)"
    assert provenance.cpu_model({"CPU part": "0xd08"}) == "Cortex-A72"


def test_command_line_names_scripts_and_the_cli():
    assert provenance.command_line(["benchmarks/bench_qat.py", "--size", "64"]) == \
        "python benchmarks/bench_qat.py --size 64"
    assert provenance.command_line(["/venv/bin/attendnext", "run", "--data", "a b"]) == "attendnext run --data 'a b'"
