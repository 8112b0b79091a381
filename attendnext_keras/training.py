"""Training: one recipe for float training and QAT fine-tuning, on one device or many (tf.distribute).

    config = TrainConfig(epochs=30, learning_rate=2e-3)
    result = train(lambda: AttendNeXt(variant="micro", classes=5, classifier_activation=None),
                   train_ds, val_ds, config, out_dir="runs/micro", strategy=make_strategy("auto"))

What a run leaves in `out_dir`: `checkpoints/` (a tf.train checkpoint of model, optimizer and epoch after every
epoch; `resume=True` continues from the newest, so a killed run loses at most the epoch in progress), `best.keras`
(best validation accuracy), `final.keras` (`.h5` for tf-keras/QAT models), `metrics.csv`, `logs/` (TensorBoard) and
`config.json`.
Works with Keras 3 models and with tf-keras models (QAT models from attendnext_keras.quantization).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings

import tensorflow as tf
from tqdm.auto import tqdm

from attendnext_keras import _io, _keras
from attendnext_keras.config import PRECISIONS, QATConfig, TrainConfig, save_config  # noqa: F401 (re-exported)
from attendnext_keras.metrics import top_k_accuracy

logger = logging.getLogger(__name__)

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")


# --- devices -------------------------------------------------------------------------------------------------


def make_strategy(kind: str = "auto"):
    """A tf.distribute strategy. "auto": TPUStrategy when a TPU answers, MultiWorkerMirroredStrategy when
    TF_CONFIG names several workers, MirroredStrategy over several local GPUs, else the default (one device).
    "mirrored" uses every local GPU, or every logical CPU when there is no GPU (how the tests run it).
    Call it before any other TensorFlow op: multi-worker collectives can only be configured at startup."""
    if kind not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: {kind!r}")
    if kind in ("auto", "tpu"):
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
        except (ValueError, RuntimeError, tf.errors.NotFoundError) as error:
            if kind == "tpu":
                raise RuntimeError(f"No TPU found: {error}") from error
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    workers = len(config.get("cluster", {}).get("worker", []))
    if kind == "multiworker" or (kind == "auto" and workers > 1):
        if kind == "multiworker" and workers < 1:
            raise ValueError("strategy='multiworker' needs TF_CONFIG with a cluster of workers and this task's "
                             "index, e.g. {\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, "
                             "\"task\": {\"type\": \"worker\", \"index\": 0}}")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "mirrored":
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if kind == "auto" and len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def configure_mixed_precision(mode: str = "auto", flavour="keras") -> str:
    """Sets the global dtype policy before models are built; returns the policy chosen."""
    if mode not in PRECISIONS:
        raise ValueError(f"`mixed_precision` must be one of {PRECISIONS}. Received: {mode!r}")
    if mode == "auto":
        mode = ("mixed_float16" if tf.config.list_logical_devices("GPU") else
                "mixed_bfloat16" if tf.config.list_logical_devices("TPU") else "float32")
    K = _keras.get_keras(flavour)
    K.mixed_precision.set_global_policy(mode)
    return mode


def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                              and "chief" not in resolver.cluster_spec().as_dict())


# --- the recipe ----------------------------------------------------------------------------------------------


def _schedule(K, config, steps_per_epoch):
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(total - 1, int(round(config.warmup * steps_per_epoch)))
    alpha = config.min_learning_rate / config.learning_rate
    peak = config.learning_rate * config.lr_scale
    if warmup > 0:
        return K.optimizers.schedules.CosineDecay(0.0, total - warmup, alpha=alpha, warmup_target=peak,
                                                  warmup_steps=warmup)
    return K.optimizers.schedules.CosineDecay(peak, total, alpha=alpha)


def make_optimizer(K, config, steps_per_epoch):
    schedule = _schedule(K, config, steps_per_epoch)
    ema = dict(use_ema=True, ema_momentum=config.ema_momentum) if config.ema_momentum else {}
    if config.optimizer == "adamw":
        return K.optimizers.AdamW(schedule, weight_decay=config.weight_decay, **ema)
    return K.optimizers.SGD(schedule, momentum=config.momentum, nesterov=True, weight_decay=config.weight_decay or None,
                            **ema)


def _prepare(dataset, classes, strategy):
    """One-hot labels (label smoothing and mixup need them) and DATA sharding across workers."""
    label_spec = dataset.element_spec[1]
    if label_spec.shape.rank == 1 or (label_spec.shape.rank == 2 and label_spec.shape[-1] == 1):
        if not label_spec.dtype.is_integer:
            raise ValueError(f"Integer class labels expected. Received labels of dtype {label_spec.dtype.name}")
        dataset = dataset.map(lambda x, y: (x, tf.one_hot(tf.reshape(y, [-1]), classes)),
                              num_parallel_calls=tf.data.AUTOTUNE)
    elif label_spec.shape[-1] != classes:
        raise ValueError(f"The model has {classes} outputs but the labels have {label_spec.shape[-1]} columns.")
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
    return dataset


def _steps(dataset, steps_per_epoch):
    if steps_per_epoch:
        return int(steps_per_epoch)
    steps = int(dataset.cardinality())
    if steps < 0:
        raise ValueError("The training dataset's length is unknown (it repeats or filters); pass steps_per_epoch.")
    if steps == 0:
        raise ValueError("The training dataset is empty.")
    return steps


def model_file(out_dir, stem, model) -> str:
    """`<stem>.keras` for Keras 3 models; `<stem>.h5` for tf-keras ones, because tf-keras' .keras format does not
    load tfmot's QuantizeLayer back (its variable count differs), while H5 inside quantize_scope() does."""
    suffix = ".h5" if _keras.flavour_of(model) == "tf_keras" else ".keras"
    return os.path.join(out_dir, stem + suffix)


def _save_model_atomic(model, path):
    """model.save through a temporary file in the same folder: a crash never leaves half a model file."""
    with _io.atomic_path(path) as tmp, _unfrozen_for_saving(model), warnings.catch_warnings():
        # H5 is deliberate for tf-keras/QAT models (see model_file); Keras' "legacy format" notice is noise here.
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")
        model.save(tmp, **({"include_optimizer": False} if tmp.endswith(".h5") else {}))


def _callbacks(K, manager, epoch_var, save_dir, images_per_epoch, total_epochs):
    class EpochEnd(K.callbacks.Callback):
        """Checkpoint (model, optimizer, epoch) after each epoch; keep the best model; images/s into the logs."""

        def __init__(self):
            super().__init__()
            self.best = -math.inf
            self.started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            logs["images_per_second"] = images_per_epoch / max(1e-9, time.perf_counter() - self.started)
            logs["learning_rate"] = _current_lr(self.model.optimizer)
            epoch_var.assign(epoch + 1)
            _save_checkpoint(manager, epoch + 1)
            score = logs.get("val_accuracy", logs.get("accuracy"))
            if score is not None and score > self.best:  # every worker saves: saving runs collectives
                self.best = score
                _save_model_atomic(self.model, model_file(save_dir, "best", self.model))

    class Progress(K.callbacks.Callback):
        """A tqdm bar per epoch in images, so it shows throughput (img/s) and the ETA of the epoch."""

        def __init__(self, steps):
            super().__init__()
            self.steps = steps
            self.bar = None

        def on_epoch_begin(self, epoch, logs=None):
            self.bar = tqdm(total=images_per_epoch, unit="img", unit_scale=True, leave=True,
                            desc=f"epoch {epoch + 1}/{total_epochs}", dynamic_ncols=True)

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(images_per_epoch / self.steps)
            if logs:
                self.bar.set_postfix({k: f"{float(v):.3f}" for k, v in logs.items() if k in ("loss", "accuracy")},
                                     refresh=False)

        def on_epoch_end(self, epoch, logs=None):
            if logs:
                self.bar.set_postfix({k: f"{float(v):.3f}" for k, v in logs.items()
                                      if k in ("loss", "accuracy", "val_loss", "val_accuracy")})
            self.bar.close()

    return EpochEnd, Progress


def _save_checkpoint(manager, number):
    """manager.save, with a full disk reported as one DiskFullError naming the folder (TensorFlow writes the new
    checkpoint beside the old and switches the index last, so the previous checkpoint stays intact)."""
    try:
        manager.save(checkpoint_number=number)
    except (tf.errors.OpError, OSError) as error:
        if getattr(error, "errno", None) == errno.ENOSPC or "No space left" in str(error):
            raise _io.DiskFullError(errno.ENOSPC, f"No space left on the device holding '{manager.directory}' while "
                                                  f"saving checkpoint {number}; the last complete checkpoint is "
                                                  f"{manager.latest_checkpoint}") from None
        raise


class TrainingDivergedError(ValueError):
    """The loss became NaN or infinite: a learning rate too high for the model, or broken data."""


def _divergence_callback(K, manager):
    class StopOnNonFiniteLoss(K.callbacks.Callback):
        """Stops at the first batch whose loss is not finite, before an epoch checkpoint could save its weights."""

        def __init__(self):
            super().__init__()
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                kept = f"the last good checkpoint is {manager.latest_checkpoint}" if manager.latest_checkpoint \
                    else "no epoch had finished, so no checkpoint was written"
                raise TrainingDivergedError(f"Training diverged: the loss became {float(loss)} at epoch "
                                            f"{self.epoch + 1}, batch {batch + 1}; {kept}. Lower the learning rate.")

    return StopOnNonFiniteLoss


def _current_lr(optimizer):
    lr = optimizer.learning_rate  # a value, a (mirrored) variable, or a schedule in older optimizers
    if callable(lr) and not isinstance(lr, tf.Variable) and not hasattr(lr, "numpy"):
        lr = lr(optimizer.iterations)
    return float(tf.convert_to_tensor(lr).numpy())


def _freeze_batchnorm(model):
    """BatchNormalization in inference mode (moving statistics, fixed gamma/beta) for the rest of training."""
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # a tfmot QuantizeWrapper holds the real layer
        if type(inner).__name__ == "BatchNormalization":
            inner.trainable = False


def _set_bn_momentum(model, momentum):
    # Read when the training step is traced, so setting it before compile() takes effect.
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if type(inner).__name__ == "BatchNormalization":
            inner.momentum = momentum


@contextlib.contextmanager
def _unfrozen_for_saving(model):
    """tfmot's QuantizeWrapper lists a frozen inner layer's gamma/beta twice in its weights, which H5 saving
    rejects ("name already exists"). Saving with the flags restored is safe: the training step was traced with
    the frozen layers and does not read the flag again."""
    frozen = [getattr(layer, "layer", layer) for layer in model.layers
              if hasattr(layer, "layer") and not layer.layer.trainable]
    for inner in frozen:
        inner.trainable = True
    try:
        yield
    finally:
        for inner in frozen:
            inner.trainable = False


@dataclasses.dataclass
class TrainResult:
    model: object
    history: dict
    out_dir: str
    best_path: str | None
    final_path: str
    initial_epoch: int


def train(model, train_data, val_data=None, config: TrainConfig | None = None, out_dir="runs/train",
          resume: bool = False, strategy=None, steps_per_epoch=None, callbacks=(), verbose: int = 1,
          overwrite: bool = False) -> TrainResult:
    """Trains `model` (a Keras 3 or tf-keras model, or a function returning one) with `config`.

    Args:
        model: the model, or a zero-argument function that builds it. With a multi-device `strategy`, pass the
            function: variables must be created inside the strategy's scope.
        train_data / val_data: tf.data datasets of (images, labels) batches; labels as class indices or one-hot.
        out_dir: where checkpoints, best/final models, metrics.csv and TensorBoard logs go. It is locked while the
            run lasts; a folder holding an earlier run is refused unless `resume` or `overwrite` says what to do.
        resume: continue from the newest checkpoint in out_dir (its epoch, step, optimizer state, random state and
            place in the data stream: the result equals an uninterrupted run's).
        overwrite: delete an earlier run's checkpoints, models and logs in out_dir first.
        strategy: a tf.distribute strategy (see make_strategy); the default is one device.
        callbacks: more Keras callbacks (of the model's flavour), run after the epoch checkpoint and metric logs.
        verbose: 1 shows a progress bar per epoch (images/s, ETA), 0 is silent.

    A loss that becomes NaN or infinite stops the run with a ValueError; the last epoch's checkpoint stays intact.
    """
    config = config or TrainConfig()
    if resume and overwrite:
        raise ValueError("`resume` and `overwrite` exclude each other: continue the earlier run or replace it "
                         "(CLI: --resume or --overwrite).")
    strategy = strategy or tf.distribute.get_strategy()
    if config.seed is not None:  # Python, NumPy, TensorFlow and Keras 3's seed generator: weights and dropout
        _keras.get_keras("keras").utils.set_random_seed(config.seed)
    chief = _is_chief(strategy)
    steps = _steps(train_data, steps_per_epoch)
    with strategy.scope():  # built before any folder is made: a model that cannot be built leaves nothing behind
        state = _compiled(model, config, steps, strategy)
    # Every worker saves (reading distributed variables runs collectives that all workers must join); non-chief
    # workers save their identical copies into a scratch folder that is removed at the end, as tf.distribute asks.
    save_dir = out_dir if chief else tempfile.mkdtemp(prefix="attendnext-worker-")
    with (_io.folder_lock(out_dir, "training run") if chief else contextlib.nullcontext()):
        if chief:
            _claim_folder(out_dir, resume, overwrite)
        return _run(state, train_data, val_data, config, out_dir, save_dir, chief, resume, strategy, steps,
                    callbacks, verbose)


def _claim_folder(out_dir, resume, overwrite):
    """Refuses a folder holding an earlier run unless told to continue (`resume`) or replace it (`overwrite`)."""
    earlier = [name for name in RUN_FILES if os.path.exists(os.path.join(out_dir, name))]
    if not earlier or resume:
        return
    if not overwrite:
        raise ValueError(f"'{out_dir}' holds an earlier run ({', '.join(earlier)}): pass resume to continue it or "
                         f"overwrite to replace it (CLI: --resume / --overwrite), or choose another folder.")
    for name in earlier:
        path = os.path.join(out_dir, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


RUN_FILES = ("checkpoints", "best.keras", "best.h5", "final.keras", "final.h5", "metrics.csv", "logs", "config.json")
"""What a run leaves in its folder (`overwrite` removes exactly these)."""


def _run(state, train_data, val_data, config, out_dir, save_dir, chief, resume, strategy, steps, callbacks,
         verbose) -> TrainResult:
    manager = tf.train.CheckpointManager(state.checkpoint, os.path.join(save_dir, "checkpoints"), max_to_keep=2)
    initial_epoch = _restore(state, manager) if resume else 0
    if chief:
        save_config(config, os.path.join(out_dir, "config.json"))
    history = {}
    if initial_epoch < config.epochs:
        every = _all_callbacks(state, manager, save_dir, steps * config.batch_size, config.epochs, steps, chief,
                               initial_epoch, callbacks, verbose)
        try:
            fit = state.model.fit(
                _stream(_prepare(train_data, state.classes, strategy), steps, initial_epoch), epochs=config.epochs,
                initial_epoch=initial_epoch, steps_per_epoch=steps, shuffle=False, verbose=0,
                validation_data=_prepare(val_data, state.classes, strategy) if val_data is not None else None,
                callbacks=every)
        except BaseException:
            _close_logs(state.keras, every)
            raise
        history = fit.history
    final_path = model_file(save_dir, "final", state.model)
    _save_model_atomic(state.model, final_path)
    best = model_file(save_dir, "best", state.model)
    if not chief:
        shutil.rmtree(save_dir, ignore_errors=True)
        return TrainResult(state.model, history, out_dir, None, None, initial_epoch)
    return TrainResult(state.model, history, out_dir, best if os.path.exists(best) else None, final_path,
                       initial_epoch)


def _stream(dataset, steps, initial_epoch):
    """The training data as one stream of epochs, `steps` batches each, that a resumed run enters at its epoch.

    `fit` then keeps one iterator for the whole run, and a seeded pipeline reshuffles and re-augments each pass the
    same way in every run; a run resumed at epoch k skips the k·steps batches it already trained on (reading, not
    training: seconds per epoch), so it sees the batches an uninterrupted run would. (Counting on `fit` to create
    one iterator per epoch does not work: it creates two, an internal detail of Keras.)"""
    stream = dataset.repeat()
    return stream.skip(initial_epoch * steps) if initial_epoch else stream


@dataclasses.dataclass
class _State:
    model: object
    keras: object
    optimizer: object
    epoch: object
    checkpoint: object
    classes: int


def _compiled(model, config, steps, strategy) -> _State:
    """Builds (inside the strategy's scope) and compiles the model; the checkpoint holds model, optimizer, epoch."""
    model = model() if callable(model) and not hasattr(model, "layers") else model
    K = _keras.get_keras(_keras.flavour_of(model))
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and _keras.flavour_of(model) == "keras":
        raise ValueError("Keras 3's fit does not support MultiWorkerMirroredStrategy (keras-team/keras#20585). "
                         "Build the model with keras='tf_keras' (same layers, same weights; "
                         "attendnext_keras.copy_weights moves them back to Keras 3) for multi-worker training.")
    classes = int(model.outputs[0].shape[-1])
    if config.freeze_batchnorm:
        _freeze_batchnorm(model)
    if config.bn_momentum is not None:
        _set_bn_momentum(model, config.bn_momentum)
    optimizer = make_optimizer(K, config, steps)
    metrics = [K.metrics.CategoricalAccuracy(name="accuracy")]
    if classes > 5:
        metrics.append(K.metrics.TopKCategoricalAccuracy(5, name="top5_accuracy"))
    model.compile(optimizer=optimizer, metrics=metrics,
                  loss=K.losses.CategoricalCrossentropy(from_logits=_keras.output_kind(model) == "logits",
                                                        label_smoothing=config.label_smoothing))
    optimizer.build(model.trainable_variables)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    # Keras 3 keeps the random state of dropout and the like in seed-generator variables that the model's own
    # checkpoint leaves out; saved too, a resumed run draws the masks an uninterrupted one would.
    seeds = [v for v in model.variables if "seed_generator" in getattr(v, "path", "")]
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch, seeds=seeds)
    return _State(model, K, optimizer, epoch, checkpoint, classes)


def _restore(state: _State, manager) -> int:
    """Restores the newest checkpoint (model, optimizer, epoch); returns the epoch to continue from."""
    if not manager.latest_checkpoint:
        logger.info("No checkpoint in %s; starting from scratch.", manager.directory)
        return 0
    try:
        state.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise ValueError(f"Checkpoint {manager.latest_checkpoint} does not fit this model (trained with another "
                         f"variant, input size or number of classes?): {str(error).splitlines()[0]}") from error
    epoch = int(state.epoch.numpy())
    logger.info("Resuming from %s: epoch %d, step %d", manager.latest_checkpoint, epoch,
                int(state.optimizer.iterations.numpy()))
    return epoch


def _all_callbacks(state, manager, save_dir, images_per_epoch, epochs, steps, chief, initial_epoch, user, verbose):
    """The checkpoint and the metric logs first, so that a user callback that stops the run cannot skip them."""
    K = state.keras
    EpochEnd, Progress = _callbacks(K, manager, state.epoch, save_dir, images_per_epoch, epochs)
    StopOnNonFiniteLoss = _divergence_callback(K, manager)
    callbacks = [StopOnNonFiniteLoss(), EpochEnd()]
    if chief:
        callbacks += [K.callbacks.CSVLogger(os.path.join(save_dir, "metrics.csv"), append=initial_epoch > 0),
                      K.callbacks.TensorBoard(os.path.join(save_dir, "logs"), write_graph=False)]
    callbacks += list(user)
    if verbose:
        callbacks.append(Progress(steps))
    return callbacks


def _close_logs(K, callbacks):
    """A run that stops with an error never reaches on_train_end: close metrics.csv and the TensorBoard writers
    anyway, so that the process (a notebook, an exploration loop) does not keep the run's files open."""
    for callback in callbacks:
        if isinstance(callback, (K.callbacks.CSVLogger, K.callbacks.TensorBoard)):
            try:
                callback.on_train_end()
            except Exception:  # noqa: BLE001 — closing is best effort; the original error is what the user needs
                pass


def evaluate(model, dataset) -> dict:
    """Top-1 (and top-5 for > 5 classes) accuracy of a Keras model on (images, labels) batches."""
    return top_k_accuracy(lambda images: model(images, training=False), dataset)
