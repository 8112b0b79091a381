"""Design exploration (attendnext_keras.experiments.explore): specs as JSON, NetScore, spec sampling under the builder's rules,
user limits that no reported result breaks, resumable Optuna studies, and outputs the builder loads.

One tiny search (embedded photographs at 32 px, 1 epoch, 2 + 1 trained candidates of a one-block space) is shared by
the module; everything else runs without training."""

import dataclasses
import json
import os

import optuna
import pytest

from attendnext_keras.config import DataConfig, SearchSpace
from attendnext_keras.experiments.explore import (Limits, check_candidate, explore, netscore, sample_spec, select_best,
                                                  write_report)
from attendnext_keras.experiments.explore.space import CONSTRAINT_NAMES, constraint_vector
from attendnext_keras.specs import (VARIANTS, ConstraintError, ModelSpec, StageSpec, check_constraints, load_spec,
                                    save_spec)

optuna.logging.set_verbosity(optuna.logging.WARNING)

# One block per column, at most two columns, one width: the cheapest candidates that still vary columns, merges,
# DC-AC placement and settings, AADS pattern and blur size.
TINY = SearchSpace(width_multipliers=(0.75,), max_columns=2, max_blocks=1, head_hidden=(0,), merges=("concat", "add"))


def _layout(columns, dcac_at, condense_log2, merges, downsamples, blurs, blocks, multiplier=1.0, size=96):
    params = {"input_size": size, "width_multiplier": multiplier, "head_hidden": 0}
    for i in range(4):
        params.update({f"stage{i + 1}_columns": columns[i], f"stage{i + 1}_blocks": blocks[i],
                       f"stage{i + 1}_dcac_at": dcac_at[i], f"stage{i + 1}_condense_log2": condense_log2[i],
                       f"stage{i + 1}_embed_ratio": 0.25, f"stage{i + 1}_merge": merges[i],
                       f"stage{i + 1}_downsample": downsamples[i], f"stage{i + 1}_blur": blurs[i]})
    return optuna.trial.FixedTrial(params)


# The reference timed beside each candidate in the tiny search: a small valid spec (cheaper to convert than micro).
TINY_REFERENCE = sample_spec(_layout([2, 2, 2, 1], [1, 1, 1, 0], [1, 1, 1, 1], ["concat"] * 4, ["max"] * 4, [3] * 4,
                                     [1] * 4, multiplier=0.75, size=32), "micro", (32,), TINY).replace(name="tiny_ref")


# ---------------------------------------------------------------------------------------------------------------------
# Specs as files


def test_spec_json_round_trip_and_the_builder_loads_it(tmp_path):
    from attendnext_keras.models import AttendNeXt

    for spec in VARIANTS.values():
        assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
        assert load_spec(save_spec(spec, tmp_path / f"{spec.name}.json")) == spec
    loaded = load_spec(save_spec(TINY_REFERENCE, tmp_path / "tiny.json"))
    assert loaded == TINY_REFERENCE and isinstance(loaded.stages[0], StageSpec)
    assert loaded.stages[0].columns[0].blocks[1].dcac.condense_factor == 2
    a = AttendNeXt(spec=loaded, classes=5, classifier_activation=None)
    b = AttendNeXt(spec=TINY_REFERENCE, classes=5, classifier_activation=None)
    assert a.count_params() == b.count_params() and [l.name for l in a.layers] == [l.name for l in b.layers]


def test_spec_files_with_mistakes_are_errors_that_name_them(tmp_path):
    values = VARIANTS["micro"].to_dict()
    values["stages"][1]["columns"][0]["blocks"][0]["kernel"] = 3
    (tmp_path / "bad.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match=r"stages\[1\]\.columns\[0\]\.blocks\[0\].*'kernel'"):
        load_spec(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        load_spec(tmp_path / "missing.json")


# ---------------------------------------------------------------------------------------------------------------------
# NetScore


def test_netscore_hand_worked_examples():
    # Ω = 20·log10(a^α / (p^β · m^γ)), α = 2, β = γ = 0.5.
    # a = 80 %, p = 4 M, m = 0.25 G: a² = 6400, √p = 2, √m = 0.5, 6400 / (2 · 0.5) = 6400,
    # Ω = 20 · log10(6400) = 20 · 3.806180 = 76.1236.
    assert netscore(80, 4, 0.25) == pytest.approx(76.1236, abs=1e-4)
    # a = 50 %, p = 1 M, m = 1 G: 2500 / 1 → 20 · log10(2500) = 20 · 3.397940 = 67.9588.
    assert netscore(50, 1, 1) == pytest.approx(67.9588, abs=1e-4)
    # α = 1, β = γ = 1, a = 10 %, p = 0.1 M, m = 0.01 G: 10 / (0.1 · 0.01) = 10⁴ → 20 · 4 = 80.
    assert netscore(10, 0.1, 0.01, alpha=1, beta=1, gamma=1) == pytest.approx(80.0)
    with pytest.raises(ValueError):
        netscore(0, 1, 1)


# ---------------------------------------------------------------------------------------------------------------------
# Sampling specs (no training)


def test_fixed_choices_reproduce_the_hand_designed_micro_layout():
    trial = _layout(columns=[3, 3, 2, 1], blocks=[1, 2, 3, 3], dcac_at=[1, 2, 2, 0], condense_log2=[2, 1, 1, 1],
                    merges=["none", "concat", "concat", "concat"], downsamples=["max", "max", "blur", "blur"],
                    blurs=[3, 3, 3, 3])
    spec = sample_spec(trial, "micro", (96,))
    micro = VARIANTS["micro"]
    assert spec.stages == micro.stages and spec.width == micro.width and spec.head == micro.head
    check_constraints(spec)


def test_sampled_specs_are_rejected_exactly_when_they_break_the_rules():
    reasons = set()
    for space in (SearchSpace(), TINY):  # one study per space: Optuna keeps a parameter's choices fixed
        seen = []

        def objective(trial):
            spec = sample_spec(trial, "micro", (32, 64), space)
            seen.append((trial.number, spec))
            try:
                check_candidate(spec)
            except ConstraintError as error:
                trial.set_user_attr("rejected", str(error))
                raise optuna.TrialPruned() from None
            return 0.0

        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(objective, n_trials=200)
        states = {t.number: t.state for t in study.trials}
        for number, spec in seen:
            try:
                check_constraints(spec)
                broken = spec.input_size % spec.size_divisor != 0
            except (ConstraintError, ValueError) as error:
                broken = True
                reasons.add(str(error).split(":")[0].split("breaks ")[-1])
            assert (states[number] == optuna.trial.TrialState.PRUNED) == broken, (number, spec)
        pruned = sum(s == optuna.trial.TrialState.PRUNED for s in states.values())
        assert 0 < pruned < len(states)  # the generator proposes both; only the checker decides
    assert reasons == {"constraint (1) columnar design", "the DC-AC placement rule"}


def test_candidates_that_break_a_cheap_limit_are_not_trained(tmp_path):
    result = explore(data=DataConfig(), study_name="tiny-limit", storage=None, trials=1, max_proposals=6,
                     input_sizes=(32,), epochs=1, max_params=1000, out_dir=str(tmp_path), space=TINY, seed=1,
                     verbose=0)
    trials = result.study.trials
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    over = [t for t in trials if t.user_attrs.get("rejected") == "limits: params"]
    assert over, [t.user_attrs.get("rejected") for t in trials]
    for t in over:
        assert t.user_attrs["metrics"]["params"] > 1000
        constraints = dict(zip(CONSTRAINT_NAMES, t.user_attrs["constraints"]))
        assert constraints["params"] > 0 and constraints["spec_rules"] == 0
        assert not os.path.exists(tmp_path / "trials" / "tiny-limit" / f"trial_{t.number:04d}" / "train")
    assert os.path.isdir(tmp_path / "trials" / "tiny-limit")  # the proposals' folders exist, none trained
    assert result.winner is None and result.best_trials == [] and "spec" not in result.paths
    assert "No feasible trial" in (tmp_path / "results.md").read_text()


def test_bad_data_fails_before_a_study_is_stored(tmp_path):
    with pytest.raises((ValueError, FileNotFoundError), match="missing"):
        explore(data=DataConfig(source=str(tmp_path / "missing")), study_name="bad",
                storage=f"sqlite:///{tmp_path}/store/study.db", trials=1, out_dir=str(tmp_path / "out"), verbose=0)
    assert not (tmp_path / "store").exists() and not (tmp_path / "out").exists()


def test_selection_never_reports_a_trial_that_breaks_a_rule_or_a_limit():
    micro = VARIANTS["micro"]
    non_columnar = micro.replace(stages=tuple(dataclasses.replace(s, columns=s.columns[:1], merge="concat")
                                              for s in micro.stages))
    limits = Limits(max_tflite_bytes=200_000, max_latency_ms=1.0)

    def trial(number, spec, top1, tflite_bytes, latency, score):
        metrics = {"params": 50_000, "macs": 1_000_000, "top1": top1, "tflite_bytes": tflite_bytes,
                   "latency_ms": latency, "latency_ratio": latency / 0.5, "arena_bytes": 10_000, "netscore": score}
        return optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE, values=[top1, latency / 0.5], params={}, distributions={},
            user_attrs={"spec": spec.to_dict(), "metrics": metrics, "evaluated": True,
                        "constraints": constraint_vector(metrics, limits)})

    trials = [trial(0, micro, 0.9, 300_000, 0.4, 120.0),    # best score, too big
              trial(1, non_columnar, 0.95, 100_000, 0.3, 130.0),  # breaks constraint (1): never reported
              trial(2, micro, 0.7, 150_000, 0.6, 100.0),    # feasible
              trial(3, micro, 0.6, 120_000, 0.5, 90.0),     # feasible, faster
              trial(4, micro, 0.8, 150_000, 2.0, 110.0)]    # too slow
    for t, number in zip(trials, range(5)):
        t.number = number
    with pytest.raises(ConstraintError):
        check_constraints(non_columnar)
    assert [t.number for t in select_best(trials, limits, "netscore")] == [2]
    assert [t.number for t in select_best(trials, limits, "pareto")] == [2, 3]
    assert [t.number for t in select_best(trials, Limits(), "netscore")] == [0]  # rule-breaking 1 still excluded
    assert 1 not in [t.number for t in select_best(trials, Limits(), "pareto")]
    assert all(c > 0 for c in trials[0].user_attrs["constraints"][3:4])  # tflite_bytes recorded as violated


def test_one_xnnpack_partition_as_a_limit_and_studies_stored_before_it_existed(tmp_path):
    from attendnext_keras.experiments.explore import open_study

    limits = Limits(max_partitions=1)
    # Segments: XNNPACK partitions plus ops left outside them (none delegated: every op its own segment).
    assert limits.violations({"graph_segments": 2}) == ["partitions"] and limits.violations({"graph_segments": 1}) == []
    assert dict(zip(CONSTRAINT_NAMES, constraint_vector({"graph_segments": 3}, limits)))["partitions"] == 2.0
    storage = f"sqlite:///{tmp_path}/old.db"
    old = open_study("old", storage, "netscore")
    old.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, values=[50.0], params={},
                                            distributions={}, user_attrs={"constraints": [0.0] * 7}))
    with pytest.raises(ValueError, match=r"holds trials with \[7\] constraints.*another study name"):
        explore(data=DataConfig(), study_name="old", storage=storage, trials=1, out_dir=str(tmp_path / "o"),
                verbose=0)
    assert explore(data=DataConfig(), study_name="old", storage=storage, trials=0, out_dir=str(tmp_path / "o"),
                   verbose=0).study.study_name == "old"  # its reports still work


# ---------------------------------------------------------------------------------------------------------------------
# A tiny search, interrupted and resumed (shared by the tests below)


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    root = tmp_path_factory.mktemp("explore")
    reference = str(save_spec(TINY_REFERENCE, root / "reference.json"))
    settings = dict(data=DataConfig(), study_name="tiny", storage=f"sqlite:///{root}/study.db", input_sizes=(32,),
                    epochs=1, batch_size=32, out_dir=str(root / "run"), space=TINY, reference=reference,
                    latency_runs=10, calibration_images=16, seed=0, verbose=0)
    first = explore(trials=2, **settings)
    before = [(t.number, t.state, t.params, t.values, t.user_attrs) for t in first.study.trials]
    evaluated_before = len(_evaluated(first.study))
    second = explore(trials=1, **settings)  # a new process would do the same: same storage, same name
    return {"root": root, "settings": settings, "before": before, "evaluated_before": evaluated_before,
            "second": second}


def _evaluated(study):
    return [t for t in study.trials if t.user_attrs.get("evaluated")]


def test_resumed_study_keeps_its_finished_trials(explored):
    second = explored["second"]
    assert explored["evaluated_before"] == 2
    stored = optuna.load_study(study_name="tiny", storage=explored["settings"]["storage"])
    assert len(_evaluated(stored)) == 3
    after = {t.number: (t.number, t.state, t.params, t.values, t.user_attrs) for t in stored.trials}
    for entry in explored["before"]:
        assert after[entry[0]] == entry
    assert len(stored.trials) > len(explored["before"])
    assert [t.number for t in _evaluated(second.study)] == [t.number for t in _evaluated(stored)]


def test_evaluated_trials_count_what_a_stored_study_trained(explored, tmp_path):
    from attendnext_keras.experiments.explore import evaluated_trials

    assert evaluated_trials("tiny", explored["settings"]["storage"]) == 3
    missing = tmp_path / "none.db"
    assert evaluated_trials("tiny", f"sqlite:///{missing}") == 0 and not missing.exists()
    assert evaluated_trials("other", explored["settings"]["storage"]) == 0


def test_an_evaluation_started_again_in_its_folder_continues_it(explored, tmp_path):
    from attendnext_keras.config import ExploreConfig
    from attendnext_keras.experiments.explore import evaluator_for
    from attendnext_keras.models import AttendNeXt

    settings = {k: v for k, v in explored["settings"].items() if k not in ("data", "verbose", "space")}
    evaluator = evaluator_for(ExploreConfig(**settings), DataConfig())

    def build():
        return AttendNeXt(spec=TINY_REFERENCE, classes=evaluator.classes, classifier_activation=None)

    first = evaluator.evaluate(build, str(tmp_path / "baseline"))
    with pytest.raises(ValueError, match="holds an earlier run"):  # never continued unless asked
        evaluator.evaluate(build, str(tmp_path / "baseline"))
    again = evaluator.evaluate(build, str(tmp_path / "baseline"), resume=True)  # a baseline after an interruption
    assert again["top1"] == first["top1"] and again["params"] == first["params"]


def test_every_trained_candidate_passes_the_rules_and_only_rule_breakers_are_rejected(explored):
    for t in explored["second"].study.trials:
        spec = ModelSpec.from_dict(t.user_attrs["spec"])
        rejected = str(t.user_attrs.get("rejected", ""))
        try:
            check_candidate(spec)
            broken = False
        except ConstraintError:
            broken = True
        assert broken == rejected.startswith("spec rules"), (t.number, rejected)
        if t.user_attrs.get("evaluated"):
            check_constraints(spec)
            assert t.state == optuna.trial.TrialState.COMPLETE and max(t.user_attrs["constraints"]) <= 0


def test_search_writes_a_spec_the_builder_loads_a_table_plots_and_a_winner_report(explored):
    from attendnext_keras.models import AttendNeXt

    result = explored["second"]
    run = explored["root"] / "run"
    for name in ("results.md", "results.json", "history.png", "pareto.png", "best_spec.json", "winner/report.md",
                 "winner/model_int8.tflite"):
        assert (run / name).is_file(), name
    for png in ("history.png", "pareto.png"):
        assert (run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    winner = result.winner
    metrics = winner.user_attrs["metrics"]
    assert metrics["netscore"] == max(t.user_attrs["metrics"]["netscore"] for t in _evaluated(result.study))
    spec = load_spec(run / "best_spec.json")
    assert spec == result.winner_spec and spec.to_dict() == winner.user_attrs["spec"]
    model = AttendNeXt(spec=spec, classes=5, classifier_activation=None)
    assert model.count_params() == metrics["params"]
    assert metrics["partitions"] >= 1 and metrics["tflite_bytes"] > 0 and metrics["latency_ratio"] > 0
    # Both halves of the 100 held-out photographs hold 50 (10 per class): each score is a count out of 50.
    assert (metrics["test_top1"] * 50) % 1 < 1e-9 and (metrics["top1"] * 50) % 1 < 1e-9
    table = (run / "results.md").read_text()
    assert table.count("| **best** |") == 1 and "3 evaluated" in table
    report = (run / "winner" / "report.md").read_text()
    assert "XNNPACK partitions" in report and "TFLite Micro arena" in report and "total" in report
    assert "test half of the held-out split (never used to select)" in report
    saved = json.loads((run / "results.json").read_text())
    assert saved["winner"] == winner.number and len(saved["trials"]) == len(result.study.trials)


def test_limits_between_two_candidates_exclude_the_larger_from_every_report(explored, tmp_path):
    study = explored["second"].study
    done = _evaluated(study)
    tested = 0
    for key, field in (("params", "max_params"), ("tflite_bytes", "max_tflite_bytes")):
        values = sorted({t.user_attrs["metrics"][key] for t in done})
        if len(values) < 2:
            continue
        limit = values[0]  # the smallest candidate meets it, the others do not
        for objective in ("netscore", "pareto"):
            result = write_report(study, tmp_path / f"{key}_{objective}", Limits(**{field: limit}), objective,
                                  verbose=0)
            assert result.best_trials, (key, objective)
            assert all(t.user_attrs["metrics"][key] <= limit for t in result.best_trials)
            over = [r for r in result.rows if r.get(key) is not None and r[key] > limit]
            assert over and all(not r["feasible"] and key in r["status"] for r in over)
            tested += 1
    assert tested  # the candidates differ in size, so some limit lies between two of them


def test_cli_explore_help_and_report_only_rerun(explored, tmp_path, capsys):
    from attendnext_keras.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["explore", "--help"])
    assert exit_info.value.code == 0
    assert "--max-arena-bytes" in capsys.readouterr().out
    out = tmp_path / "report"
    assert main(["explore", "--trials", "0", "--storage", explored["settings"]["storage"], "--study-name", "tiny",
                 "--input-sizes", "32", "--out", str(out)]) == 0
    assert (out / "best_spec.json").is_file() and load_spec(out / "best_spec.json") == explored["second"].winner_spec
    # The full protocol's file is read before any search: a missing one is one line, and nothing is written.
    assert main(["explore", "--trials", "1", "--storage", explored["settings"]["storage"], "--study-name", "tiny",
                 "--out", str(tmp_path / "never"), "--finalists", "2", "--finalist-protocol",
                 str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "missing.yaml' does not exist" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()


# ---------------------------------------------------------------------------------------------------------------------
# The full protocol for finalists


def test_finalists_spread_along_the_front_ends_included():
    from attendnext_keras.experiments.explore.finalists import pick_finalists

    front = list(range(7))  # most accurate first, fastest last
    assert pick_finalists(front, 3) == [0, 3, 6]
    assert pick_finalists(front, 1) == [0]
    assert pick_finalists(front[:2], 3) == [0, 1] and pick_finalists(front, 0) == [] and pick_finalists([], 2) == []


def test_finalists_are_only_trials_that_build_at_the_protocol_and_deployment_sizes():
    from types import SimpleNamespace

    from attendnext_keras.experiments.explore.finalists import trainable_at

    micro = VARIANTS["micro"]  # output stride 32, DC-AC grids within it: any multiple of 32
    layout = micro.to_dict()
    for column in layout["stages"][2]["columns"]:  # stride 16: a DC-AC condensing by 4 needs multiples of 64
        next(b for b in column["blocks"] if b["kind"] == "dcac")["dcac"]["condense_factor"] = 4
    coarse = ModelSpec.from_dict(layout)
    trials = [SimpleNamespace(number=n, user_attrs={"spec": spec.to_dict()}) for n, spec in enumerate((micro, coarse))]
    assert (micro.size_divisor, coarse.size_divisor) == (32, 64)
    assert [t.number for t in trainable_at(trials, 96, 96)] == [0]  # 96 px is no multiple of 64
    assert [t.number for t in trainable_at(trials, 64, 128)] == [0, 1]
    assert trainable_at(trials, 16) == []
    # The search can refuse such a layout before training it: ExploreConfig.builds_at = the finalists' sizes.
    check_candidate(micro, also_sizes=(96, 128))
    with pytest.raises(ConstraintError, match="multiples of 64") as error:
        check_candidate(coarse.replace(input_size=64), also_sizes=(96,))
    assert error.value.rule == "input size 96"


def test_finalist_sizes_are_the_study_size_and_the_deployment_size():
    from attendnext_keras.config import ExploreConfig, StudyConfig
    from attendnext_keras.experiments.explore.finalists import finalist_sizes

    assert finalist_sizes(StudyConfig(input_size=128), ExploreConfig(base_variant="micro")) == (96, 128)
    assert finalist_sizes(StudyConfig(input_size=96), ExploreConfig(base_variant="micro")) == (96,)
    with pytest.raises(ValueError, match="builds_at"):
        ExploreConfig(builds_at=(0,))


def test_the_finalists_front_is_recomputed_among_the_trials_the_protocol_can_train(explored):
    from attendnext_keras.config import ExploreConfig
    from attendnext_keras.experiments.explore.finalists import distinct_designs, finalist_front

    second, config = explored["second"], ExploreConfig(objective="netscore", base_variant="micro")
    whole = [t.number for t in distinct_designs(second.best_trials, VARIANTS["micro"])]
    assert [t.number for t in finalist_front(second.study, config, 32, 96)] == whole
    assert finalist_front(second.study, config, 16) == []  # under every trial's output stride


def _study_run(model, seed, selection, test):
    correct = "1" * round(test * 10) + "0" * (10 - round(test * 10))
    return {"model": model, "name": model, "family": "attendnext", "seed": seed, "stage": "front", "hash": "h",
            "params": 1000, "macs": 5000, "val_top1": selection, "test_top1": test, "test_correct": correct,
            "test_examples": 10, "shift": {"consistency": 1.0}, "train_seconds": 1.0,
            "history": {"val_accuracy": [selection]}}


def test_the_finalist_chosen_is_the_best_on_the_selection_half_never_the_test_half(tmp_path):
    from attendnext_keras.experiments.explore import finalists

    a, b = (str(save_spec(VARIANTS["micro"].replace(name=n), tmp_path / f"{n}.json")) for n in ("a", "b"))
    runs = [_study_run(a, s, 0.8, 0.5) for s in (0, 1)] + [_study_run(b, s, 0.7, 0.9) for s in (0, 1)]
    runs += [_study_run("attendnext_micro", s, 0.6, 0.6) for s in (0, 1)]
    plan = [[r["model"], r["seed"], "h"] for r in runs]
    (tmp_path / "results.json").write_text(json.dumps({"runs": runs, "plans": {"front": plan}}))
    summary = finalists.summarize(str(tmp_path), [a, b], "attendnext_micro")
    assert summary["chosen"] == a and summary["models"][b]["test_top1"] == pytest.approx(0.9)
    assert load_spec(tmp_path / "chosen_spec.json").name == "a"
    assert "a.json (chosen)" in (tmp_path / "finalists.md").read_text()
    with pytest.raises(ValueError, match="has no runs of .*c.json"):
        finalists.summarize(str(tmp_path), [a, str(tmp_path / "c.json")], "attendnext_micro")


def test_finalists_train_with_the_study_protocol_beside_the_base_variant(explored, tmp_path, monkeypatch):
    from attendnext_keras.config import ExploreConfig, StudyConfig, TrainConfig
    from attendnext_keras.experiments import study
    from attendnext_keras.experiments.explore import finalists

    timed = {}
    monkeypatch.setattr(study.benchmark, "run_benchmark",  # timing is the benchmark's; its tests cover it
                        lambda config, **kwargs: timed.setdefault("models", config.models))
    monkeypatch.setattr(study.benchmark_report, "write_reports", lambda *args, **kwargs: {})
    config = ExploreConfig(out_dir=str(tmp_path), finalists=1, base_variant="micro")
    # A protocol file's own candidates are not finalists: they are neither trained nor timed here.
    protocol = StudyConfig(seeds=(0,), input_size=32, epochs=1, bootstrap_samples=200, candidates=("fbnet_c",))
    summary = finalists.run_finalists(explored["second"], config, protocol, TrainConfig(batch_size=50),
                                      DataConfig(), verbose=0)
    winner = explored["second"].best_trials[0]
    spec_file = str(tmp_path / "finalists" / "specs" / f"trial_{winner.number:04d}.json")
    assert summary["chosen"] == spec_file and list(summary["models"]) == [spec_file, "attendnext_micro"]
    chosen = load_spec(tmp_path / "finalists" / "chosen_spec.json")
    assert chosen.input_size == VARIANTS["micro"].input_size  # timed at the base variant's deployment size
    assert chosen.stages == ModelSpec.from_dict(winner.user_attrs["spec"]).stages
    assert timed["models"] == (spec_file, "attendnext_micro")
    saved = json.loads((tmp_path / "finalists" / "results.json").read_text())
    assert [(r["model"], r["input_size"], r["epochs"]) for r in saved["runs"]] == [
        (spec_file, 32, 1), ("attendnext_micro", 32, 1)]
    assert (tmp_path / "finalists" / "study.md").is_file()
