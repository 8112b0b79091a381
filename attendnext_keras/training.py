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
import json
import math
import os
import tempfile
import time

from attendnext_keras import _keras

OPTIMIZERS = ("adamw", "sgd")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")


@dataclasses.dataclass
class TrainConfig:
    """The training recipe. `TrainConfig.qat()` gives the fine-tuning recipe for quantization-aware models."""

    epochs: int = 30
    batch_size: int = 64  # global batch: tf.distribute splits it across replicas
    optimizer: str = "adamw"
    learning_rate: float = 2e-3  # peak, reached after warmup; cosine decay to min_learning_rate
    min_learning_rate: float = 0.0
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    momentum: float = 0.9  # SGD only
    label_smoothing: float = 0.1
    ema_momentum: float | None = None  # e.g. 0.999: evaluate and save the exponential moving average of weights
    freeze_batchnorm: bool = False  # use moving statistics; what QAT fine-tuning wants once ranges settle
    bn_momentum: float | None = None  # BatchNorm moving-average momentum; ~0.9 suits short runs (Keras: 0.99)
    mixed_precision: str = "auto"  # "auto": float16 on GPU, bfloat16 on TPU, float32 on CPU
    seed: int | None = 0

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"`optimizer` must be one of {OPTIMIZERS}. Received: optimizer={self.optimizer!r}")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"`mixed_precision` must be one of {PRECISIONS}. "
                             f"Received: mixed_precision={self.mixed_precision!r}")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={getattr(self, name)!r}")
        if self.learning_rate <= 0 or not 0 <= self.label_smoothing < 1 or self.warmup_epochs < 0:
            raise ValueError(f"Need learning_rate > 0, 0 <= label_smoothing < 1 and warmup_epochs >= 0. Received: "
                             f"learning_rate={self.learning_rate}, label_smoothing={self.label_smoothing}, "
                             f"warmup_epochs={self.warmup_epochs}")
        if self.bn_momentum is not None and not 0 <= self.bn_momentum < 1:
            raise ValueError(f"`bn_momentum` must be in [0, 1) or None. Received: {self.bn_momentum}")
        if self.ema_momentum is not None and not 0 < self.ema_momentum < 1:
            raise ValueError(f"`ema_momentum` must be in (0, 1) or None. Received: {self.ema_momentum}")

    @classmethod
    def qat(cls, **overrides) -> "TrainConfig":
        """QAT fine-tuning from float weights: a few epochs at a learning rate ~20× below float training, no
        warmup (the weights are already good) and BatchNorm statistics frozen so the folded weights and the
        fake-quant ranges stop moving against each other."""
        recipe = dict(epochs=3, learning_rate=1e-4, warmup_epochs=0.0, weight_decay=0.0, freeze_batchnorm=True,
                      mixed_precision="float32")
        return cls(**{**recipe, **overrides})

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown training settings {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_file(cls, path) -> "TrainConfig":
        """Loads a YAML or JSON file of settings (unknown keys are an error)."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"Training config '{path}' does not exist.")
        with open(path, encoding="utf-8") as f:
            if str(path).endswith((".yaml", ".yml")):
                import yaml

                values = yaml.safe_load(f) or {}
            else:
                values = json.load(f)
        if not isinstance(values, dict):
            raise ValueError(f"Training config '{path}' must hold a mapping of settings. Received: {type(values)}")
        return cls.from_dict(values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --- devices -------------------------------------------------------------------------------------------------


def make_strategy(kind: str = "auto"):
    """A tf.distribute strategy. "auto": TPUStrategy when a TPU answers, MultiWorkerMirroredStrategy when
    TF_CONFIG names several workers, MirroredStrategy over several local GPUs, else the default (one device).
    "mirrored" uses every local GPU, or every logical CPU when there is no GPU (how the tests run it).
    Call it before any other TensorFlow op: multi-worker collectives can only be configured at startup."""
    import tensorflow as tf

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
    import tensorflow as tf

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
    warmup = min(total - 1, int(round(config.warmup_epochs * steps_per_epoch)))
    alpha = config.min_learning_rate / config.learning_rate
    if warmup > 0:
        return K.optimizers.schedules.CosineDecay(0.0, total - warmup, alpha=alpha, warmup_target=config.learning_rate,
                                                  warmup_steps=warmup)
    return K.optimizers.schedules.CosineDecay(config.learning_rate, total, alpha=alpha)


def make_optimizer(K, config, steps_per_epoch):
    schedule = _schedule(K, config, steps_per_epoch)
    ema = dict(use_ema=True, ema_momentum=config.ema_momentum) if config.ema_momentum else {}
    if config.optimizer == "adamw":
        return K.optimizers.AdamW(schedule, weight_decay=config.weight_decay, **ema)
    return K.optimizers.SGD(schedule, momentum=config.momentum, nesterov=True, weight_decay=config.weight_decay or None,
                            **ema)


def _output_is_logits(model) -> bool:
    from attendnext_keras.export import output_kind

    return output_kind(model) == "logits"


def _prepare(dataset, classes, strategy):
    """One-hot labels (label smoothing and mixup need them) and DATA sharding across workers."""
    import tensorflow as tf

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
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        os.unlink(tmp)  # Keras refuses to overwrite silently in some versions; let it create the file
        with _unfrozen_for_saving(model):
            model.save(tmp, **({"include_optimizer": False} if tmp.endswith(".h5") else {}))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


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
            manager.save(checkpoint_number=epoch + 1)
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
            from tqdm.auto import tqdm

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


def _current_lr(optimizer):
    import tensorflow as tf

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
          resume: bool = False, strategy=None, steps_per_epoch=None, callbacks=(), verbose: int = 1) -> TrainResult:
    """Trains `model` (a Keras 3 or tf-keras model, or a function returning one) with `config`.

    Args:
        model: the model, or a zero-argument function that builds it. With a multi-device `strategy`, pass the
            function: variables must be created inside the strategy's scope.
        train_data / val_data: tf.data datasets of (images, labels) batches; labels as class indices or one-hot.
        out_dir: where checkpoints, best/final models, metrics.csv and TensorBoard logs go.
        resume: continue from the newest checkpoint in out_dir (its epoch, step, optimizer state).
        strategy: a tf.distribute strategy (see make_strategy); the default is one device.
        callbacks: more Keras callbacks (of the model's flavour), run after the epoch checkpoint and metric logs.
        verbose: 1 shows a progress bar per epoch (images/s, ETA), 0 is silent.
    """
    import tensorflow as tf

    config = config or TrainConfig()
    strategy = strategy or tf.distribute.get_strategy()
    if config.seed is not None:  # weights initialised inside model() and dropout draw from these
        import keras

        keras.utils.set_random_seed(config.seed)  # Python, NumPy, TensorFlow and Keras 3's own seed generator
    os.makedirs(out_dir, exist_ok=True)
    chief = _is_chief(strategy)
    # Every worker saves (reading distributed variables runs collectives that all workers must join); non-chief
    # workers save their identical copies into a scratch folder that is removed at the end, as tf.distribute asks.
    save_dir = out_dir if chief else tempfile.mkdtemp(prefix="attendnext-worker-")
    ckpt_dir = os.path.join(save_dir, "checkpoints")
    steps = _steps(train_data, steps_per_epoch)

    with strategy.scope():
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
                      loss=K.losses.CategoricalCrossentropy(from_logits=_output_is_logits(model),
                                                            label_smoothing=config.label_smoothing))
        optimizer.build(model.trainable_variables)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var)
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=2)

    initial_epoch = 0
    if resume and manager.latest_checkpoint:
        try:
            checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise ValueError(f"Checkpoint {manager.latest_checkpoint} does not fit this model (trained with another "
                             f"variant, input size or number of classes?): {str(error).splitlines()[0]}") from error
        initial_epoch = int(epoch_var.numpy())
        if verbose:
            print(f"Resuming from {manager.latest_checkpoint}: epoch {initial_epoch}, "
                  f"step {int(optimizer.iterations.numpy())}")
    elif resume and verbose:
        print(f"No checkpoint in {ckpt_dir}; starting from scratch.")
    if chief:
        with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
            json.dump(config.to_dict(), f, indent=1)

    train_ds = _prepare(train_data, classes, strategy)
    val_ds = _prepare(val_data, classes, strategy) if val_data is not None else None
    images_per_epoch = steps * config.batch_size
    EpochEnd, Progress = _callbacks(K, manager, epoch_var, save_dir, images_per_epoch, config.epochs)
    # The checkpoint and the metric logs first, so a user callback that stops the run cannot skip them.
    user_callbacks, callbacks = list(callbacks), [EpochEnd()]
    if chief:
        callbacks += [K.callbacks.CSVLogger(os.path.join(out_dir, "metrics.csv"), append=initial_epoch > 0),
                      K.callbacks.TensorBoard(os.path.join(out_dir, "logs"), write_graph=False)]
    callbacks += user_callbacks
    if verbose:
        callbacks.append(Progress(steps))
    history = {}
    if initial_epoch < config.epochs:
        fit = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, initial_epoch=initial_epoch,
                        steps_per_epoch=steps_per_epoch, callbacks=callbacks, shuffle=False, verbose=0)
        history = fit.history
    final_path = model_file(save_dir, "final", model)
    _save_model_atomic(model, final_path)
    best = model_file(save_dir, "best", model)
    if not chief:
        import shutil

        shutil.rmtree(save_dir, ignore_errors=True)
        return TrainResult(model, history, out_dir, None, None, initial_epoch)
    return TrainResult(model, history, out_dir, best if os.path.exists(best) else None, final_path, initial_epoch)


def evaluate(model, dataset) -> dict:
    """Top-1 (and top-5 for > 5 classes) accuracy of a Keras model on (images, labels) batches."""
    import numpy as np

    correct1 = correct5 = total = 0
    for images, labels in dataset:
        scores = np.asarray(model(images, training=False))
        labels = np.asarray(labels)
        labels = labels.argmax(-1) if labels.ndim == 2 else labels.reshape(-1)
        top = np.argsort(-scores, axis=-1)
        correct1 += int((top[:, 0] == labels).sum())
        correct5 += int((top[:, :5] == labels[:, None]).any(-1).sum())
        total += len(labels)
    if total == 0:
        raise ValueError("The evaluation dataset is empty.")
    result = {"top1": correct1 / total, "examples": total}
    if scores.shape[-1] > 5:
        result["top5"] = correct5 / total
    return result
