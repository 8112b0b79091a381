"""The `attendnext` command line: happy paths on tiny settings and one-line errors."""

import json

from attendnext_keras.cli import main


def test_variants(capsys):
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("base", "small", "micro"))


def test_profile_json_reflects_flags(capsys):
    assert main(["profile", "--variant", "micro", "--input-size", "64", "--classes", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["layers"][-1]["name"] == "predictions" and result["params"] > 0
    assert result["groups"]["head"]["macs"] == 112 * 5  # GAP → Dense(5) on 112 channels


def test_profile_table_shows_the_built_spec(capsys):
    assert main(["profile", "--variant", "micro", "--input-size", "64", "--alpha", "2"]) == 0
    out = capsys.readouterr().out
    assert "input 64×64" in out and "width ×0.6" in out and "total" in out


def test_bad_input_size_is_a_one_line_error(capsys):
    assert main(["profile", "--variant", "micro", "--input-size", "100"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attendnext profile: error:") and "multiples of 32" in err and "Traceback" not in err
