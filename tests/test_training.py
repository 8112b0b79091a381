"""Training: the loss falls on real photographs, an interrupted run resumes where it stopped, and tf.distribute
(two logical CPUs; two worker processes over loopback) computes what one device computes."""

import csv
import json
import os
import socket
import subprocess
import sys

import pytest

import attendnext_keras as an
from attendnext_keras import data
from attendnext_keras.training import TrainConfig, evaluate, train

from conftest import REPO, tiny_model

HELPER = str(REPO / "tests" / "helpers" / "distributed_train.py")
KILLED_HELPER = str(REPO / "tests" / "helpers" / "killed_train.py")
STEPS = 8  # 400 embedded photographs in batches of 50


@pytest.fixture(scope="module")
def datasets():
    """64 embedded photographs at 32 px in batches of 32: two steps an epoch, for tests of what training does around
    the steps (folders, checkpoints, divergence, a full disk)."""
    source = data.load_source("default", "train")
    small = data.ImageSource(**{**source.__dict__, "files": source.files[::6][:64], "labels": source.labels[::6][:64],
                                "num_examples": 64})
    return (data.make_dataset(small, 32, 32, training=True, seed=0),)


def _train_args(out, spec, *extra):
    return ["--data", "default", "--arch", str(spec), "--input-size", "32", "--epochs", "3", "--batch-size", "50",
            "--out", str(out), *extra]


@pytest.fixture(scope="module")
def whole_and_killed(tmp_path_factory, tiny_spec_file):
    """The CLI's 3-epoch run of the tiny AttendNeXt, and the same run killed (SIGKILL, from inside: see
    tests/helpers/killed_train.py) right after its second epoch, then resumed with --resume in a new process."""
    import tensorflow as tf

    root = tmp_path_factory.mktemp("killed")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cli = [sys.executable, "-m", "attendnext_keras.cli", "train"]
    subprocess.run(cli + _train_args(root / "whole", tiny_spec_file), check=True, capture_output=True, env=env,
                   cwd=REPO)
    killed = subprocess.run([sys.executable, KILLED_HELPER, *_train_args(root / "killed", tiny_spec_file)],
                            capture_output=True, text=True, env=env, cwd=REPO)
    assert killed.returncode == -9, killed.stderr[-2000:]
    latest = tf.train.latest_checkpoint(str(root / "killed" / "checkpoints"))
    killed_at_two = latest.endswith("ckpt-2") and not (root / "killed" / "final.keras").exists()
    resumed = subprocess.run(cli + _train_args(root / "killed", tiny_spec_file, "--resume"), check=True,
                             capture_output=True, text=True, env=env, cwd=REPO)
    return root, killed_at_two, resumed.stderr


def _losses(run_dir):
    return [float(row["loss"]) for row in csv.DictReader(open(run_dir / "metrics.csv"))]


def test_loss_decreases_on_real_images(whole_and_killed):
    root = whole_and_killed[0]
    rows = list(csv.DictReader(open(root / "whole" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    losses = _losses(root / "whole")
    assert losses[2] < losses[0] - 0.05, losses
    assert all(float(r["images_per_second"]) > 0 for r in rows)


def test_sigkill_and_resume_give_the_uninterrupted_weights(whole_and_killed):
    """A run killed after its second epoch's checkpoint and resumed ends with exactly the weights, losses and
    optimizer step of an uninterrupted run: the data stream, dropout masks and optimizer state all continue. Measured
    on this CPU: difference 0.0 (the bound asserted allows for non-deterministic CPU kernels elsewhere)."""
    import numpy as np

    root, killed_at_two, stderr = whole_and_killed
    assert killed_at_two and "Resuming from" in stderr and "epoch 2" in stderr, stderr[-2000:]
    assert _losses(root / "whole") == _losses(root / "killed")
    a, b = (an.load_model(root / run / "final.keras") for run in ("whole", "killed"))
    assert max(float(np.abs(x - y).max()) for x, y in zip(a.get_weights(), b.get_weights())) <= 1e-6
    assert int(a.optimizer.iterations.numpy()) == int(b.optimizer.iterations.numpy()) == 3 * STEPS


def test_run_folder_holds_every_artefact(whole_and_killed):
    import keras

    out = whole_and_killed[0] / "whole"
    assert {"checkpoints", "best.keras", "final.keras", "metrics.csv", "logs", "config.json"} <= set(os.listdir(out))
    assert json.load(open(out / "config.json"))["epochs"] == 3
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]  # atomic saves leave no temporaries
    final = keras.models.load_model(out / "final.keras")
    accuracy = evaluate(final, data.make_dataset(data.load_source("default", "val"), 32, 50, training=False))
    last = list(csv.DictReader(open(out / "metrics.csv")))[-1]
    assert accuracy["examples"] == 100
    assert accuracy["top1"] == pytest.approx(float(last["val_accuracy"]), abs=1e-6)  # our loop agrees with Keras'


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device(tmp_path):
    done = subprocess.run([sys.executable, HELPER, "mirrored", str(tmp_path)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    line = [l for l in done.stdout.splitlines() if l.startswith("REPLICAS")]
    assert done.returncode == 0 and line, done.stderr[-2000:]
    fields = line[0].split()
    replicas, diff, moved = int(fields[1]), float(fields[3]), float(fields[5])
    assert replicas == 2
    assert moved > 1e-3  # training moved the weights from the shared initial ones...
    assert diff < 1e-4 * moved  # ...and both strategies moved them identically (measured: 1.4e-9 of 3.9e-3)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_over_loopback(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(subprocess.Popen([sys.executable, HELPER, "multiworker", str(tmp_path)],
                                        env={**os.environ, "TF_CONFIG": tf_config, "PYTHONPATH": str(REPO)},
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=600)
            assert worker.returncode == 0, stderr[-2000:]
            outputs.append([l for l in stdout.splitlines() if l.startswith("REPLICAS")][0].split())
    finally:
        for worker in workers:
            worker.kill()
    assert [o[1] for o in outputs] == ["2", "2"]  # one replica per worker, in sync
    assert outputs[0][3] == outputs[1][3] and outputs[0][5] == outputs[1][5]  # same loss, same weights
    assert {"final.h5", "metrics.csv", "checkpoints"} <= set(os.listdir(tmp_path))  # only the chief writes here


def test_qat_recipe():
    config = TrainConfig.qat(epochs=2)
    assert type(config).__name__ == "QATConfig"
    assert config.epochs == 2 and config.freeze_batchnorm and config.warmup == 0
    assert config.learning_rate <= TrainConfig().learning_rate / 10


def test_unknown_length_dataset_needs_steps(tmp_path):
    import numpy as np
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 32, 32, 3), "float32"), np.zeros(4, "int32")))
    with pytest.raises(ValueError, match="steps_per_epoch"):
        train(lambda: None, ds.batch(2).repeat(), None, TrainConfig(epochs=1), out_dir=str(tmp_path), verbose=0)


# ---------------------------------------------------------------------------------------------------------------------
# Reliability: kill and resume reproduce, divergence stops cleanly, output folders are claimed


def _open_files_under(folder) -> list:
    """The files under `folder` this process still holds open (Linux /proc)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor of the listing itself, closed by now
            continue
        if target.startswith(str(folder)):
            held.append(target)
    return held


def test_an_error_inside_fit_leaves_no_file_of_the_run_open(datasets, tmp_path):
    """Keras skips on_train_end when a callback raises: the run's metrics.csv and TensorBoard writers are closed
    anyway (a notebook or an exploration loop would otherwise keep them open)."""
    import keras

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("boom")

    held = None
    try:
        train(tiny_model, datasets[0], None, TrainConfig(epochs=2), out_dir=str(tmp_path), callbacks=[Boom()],
              verbose=0)
    except RuntimeError as error:  # checked while the error (and its traceback's frames) still lives
        held = _open_files_under(tmp_path)
        assert str(error) == "boom"
    assert (tmp_path / "metrics.csv").exists() and held == []


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(datasets, tmp_path):
    import keras
    import numpy as np

    class Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:  # as a far too high learning rate would
                layer = self.model.get_layer("predictions")
                layer.set_weights([np.full_like(w, np.nan) for w in layer.get_weights()])

    with pytest.raises(ValueError, match=r"Training diverged: the loss became nan at epoch 2, batch 1; the last "
                                         r"good checkpoint is .*ckpt-1\. Lower the learning rate"):
        train(tiny_model,
              datasets[0], None, TrainConfig(epochs=3), out_dir=str(tmp_path), callbacks=[Poison()], verbose=0)
    import tensorflow as tf

    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-1")
    path = str(tmp_path / "checkpoints" / "ckpt-1")
    weights = [tf.train.load_variable(path, name) for name, _ in tf.train.list_variables(path)
               if name.startswith("model/")]
    assert len(weights) > 50 and all(np.isfinite(w).all() for w in weights)  # saved before the poison


def test_an_earlier_run_is_refused_unless_resumed_or_overwritten(datasets, tmp_path):
    from attendnext_keras import _io

    def run(**kwargs):
        return train(tiny_model,
                     datasets[0], None, TrainConfig(epochs=1), out_dir=str(tmp_path), verbose=0, **kwargs)

    run()
    with pytest.raises(ValueError, match=r"holds an earlier run \(checkpoints, .*\): pass resume to continue it or "
                                         r"overwrite to replace it"):
        run()
    run(overwrite=True)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith("ckpt-")) == \
        ["ckpt-1.data-00000-of-00001", "ckpt-1.index"]
    (tmp_path / ".lock").write_text(str(os.getppid()))  # a live process holds the folder
    with pytest.raises(_io.FolderInUseError, match=f"in use by another training run \\(process {os.getppid()}\\)"):
        run(resume=True)
    (tmp_path / ".lock").write_text("999999999")  # a lock left by a process that no longer runs
    run(resume=True)
    assert not (tmp_path / ".lock").exists()


def test_a_model_that_cannot_be_built_leaves_no_folder(datasets, tmp_path):
    with pytest.raises(ValueError, match="multiples of 32"):
        train(lambda: an.AttendNeXt(variant="micro", input_shape=(48, 48, 3), classes=5), datasets[0], None,
              TrainConfig(epochs=1), out_dir=str(tmp_path / "new"), verbose=0)
    assert not (tmp_path / "new").exists()


def test_a_full_disk_stops_training_with_one_line_and_keeps_the_last_checkpoint(datasets, tmp_path):
    """A small tmpfs filled up after the first epoch (where mounting is allowed, as for root in CI); otherwise the
    checkpoint write is made to fail with ENOSPC. Either way: DiskFullError naming the folder, ckpt-1 intact."""
    import errno
    import subprocess as sp

    import keras
    import tensorflow as tf

    from attendnext_keras import _io

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = sp.run(["mount", "-t", "tmpfs", "-o", "size=8M", "tmpfs", str(disk)], capture_output=True).returncode == 0

    class FillTheDisk(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch != 0:
                return
            if mounted:
                try:
                    with open(disk / "filler", "wb") as f:
                        while True:
                            f.write(b"\0" * 65536)
                            f.flush()
                except OSError:  # ENOSPC: the disk is full now
                    pass
            else:
                def full(*args, **kwargs):
                    raise OSError(errno.ENOSPC, "No space left on device")

                tf.train.CheckpointManager.save = full

    original = tf.train.CheckpointManager.save
    try:
        with pytest.raises(_io.DiskFullError, match=r"No space left on the device holding '.*checkpoints' while saving "
                                                    r"checkpoint 2; the last complete checkpoint is .*ckpt-1"):
            train(tiny_model,
                  datasets[0], None, TrainConfig(epochs=3), out_dir=str(disk / "run"), callbacks=[FillTheDisk()],
                  verbose=0)
        assert tf.train.latest_checkpoint(str(disk / "run" / "checkpoints")).endswith("ckpt-1")
        restored = tiny_model()
        tf.train.Checkpoint(model=restored).read(str(disk / "run" / "checkpoints" / "ckpt-1")).expect_partial()
    finally:
        tf.train.CheckpointManager.save = original
        unmounted = not mounted or sp.run(["umount", str(disk)], capture_output=True).returncode == 0
    assert unmounted, "the failed run keeps files open on the full disk (metrics.csv, TensorBoard logs)"
