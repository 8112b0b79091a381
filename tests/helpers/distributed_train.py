"""Child process for the distribution tests: trains the tests' tiny AttendNeXt on a fixed tiny dataset.

    python distributed_train.py mirrored OUT      # two logical CPUs: one device vs MirroredStrategy, weights saved
    python distributed_train.py multiworker OUT   # one worker of a MultiWorkerMirroredStrategy (TF_CONFIG set)
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

mode, out = sys.argv[1], sys.argv[2]
if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import attendnext_keras as an  # noqa: E402
from attendnext_keras.specs import HeadSpec  # noqa: E402
from attendnext_keras.training import TrainConfig, make_strategy, train  # noqa: E402
from tiny import TINY  # noqa: E402  (this folder is the script's sys.path[0])

# MultiWorkerMirroredStrategy configures collective ops, which must happen before any other TensorFlow op.
strategy = make_strategy("multiworker") if mode == "multiworker" else None

# No dropout and frozen BatchNorm: each replica then computes exactly the single-device maths on its half batch,
# so the all-reduced gradient equals the single-device gradient and the weights must agree.
SPEC = TINY.replace(head=HeadSpec(hidden=0, dropout=0.0))
CONFIG = TrainConfig(epochs=1, batch_size=8, optimizer="sgd", learning_rate=0.05, warmup_epochs=0, momentum=0.0,
                     weight_decay=0.0, label_smoothing=0.0, freeze_batchnorm=True, seed=3)

rng = np.random.default_rng(0)
images = rng.uniform(0, 255, (32, 32, 32, 3)).astype("float32")
labels = rng.integers(0, 3, 32).astype("int32")
dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(CONFIG.batch_size)


def _model():
    # Keras 3's fit does not support MultiWorkerMirroredStrategy (keras-team/keras#20585); tf-keras does, and the
    # builder makes the same model in either flavour.
    return an.AttendNeXt(spec=SPEC, input_shape=(32, 32, 3), classes=3, classifier_activation=None,
                         keras="tf_keras" if mode == "multiworker" else "keras")


keras.utils.set_random_seed(3)  # the same seed in every worker process: the same initial weights everywhere
INITIAL = _model().get_weights()  # every run starts from exactly these weights


def build():
    model = _model()
    model.set_weights(INITIAL)
    return model


def run(strategy, folder):
    result = train(build, dataset, None, CONFIG, out_dir=folder, strategy=strategy, verbose=0)
    return result.model.get_weights(), result.history["loss"][-1]


if mode == "mirrored":
    single, loss1 = run(tf.distribute.get_strategy(), os.path.join(out, "single"))
    strategy = make_strategy("mirrored")
    mirrored, loss2 = run(strategy, os.path.join(out, "mirrored"))
    diff = max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(single, build().get_weights()))
    print(f"REPLICAS {strategy.num_replicas_in_sync} DIFF {diff:.3g} MOVED {moved:.3g} LOSS {loss1:.6f} {loss2:.6f}")
else:
    weights, loss = run(strategy, out)
    print(f"REPLICAS {strategy.num_replicas_in_sync} LOSS {loss:.6f} CHECKSUM {sum(float(w.sum()) for w in weights):.6f}")
