"""Child process for the ImageNet recipe test: `attendnext train --config configs/imagenet_<variant>.yaml` for a few
steps on TFDS mock data for imagenet2012 (random images, 1000 classes), once with the default strategy (one device)
and once with MirroredStrategy over two logical CPUs, in one process (TensorFlow starts once).

    python imagenet_mock_train.py CONFIG OUT      # writes OUT/default/ and OUT/mirrored/
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

config, out = sys.argv[1:3]
# Two logical CPUs, set before TensorFlow initialises its devices: MirroredStrategy uses both, the default one.
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import yaml  # noqa: E402

from attendnext_keras.cli import main  # noqa: E402

# The recipe as shipped, shortened to one epoch without warm-up (its 5 warm-up epochs need a longer run).
with open(config) as f:
    recipe = yaml.safe_load(f)
recipe["train"].update(epochs=1, warmup_epochs=0)
os.makedirs(out, exist_ok=True)
config = os.path.join(out, "recipe.yaml")
with open(config, "w") as f:
    yaml.safe_dump(recipe, f)

codes = []
with tfds.testing.mock_data(num_examples=16):
    for strategy in ("default", "mirrored"):
        codes.append(main(["train", "--config", config, "--strategy", strategy, "--batch-size", "8",
                           "--input-size", "32", "--data-dir", os.path.join(out, "tfds"),
                           "--out", os.path.join(out, strategy)]))
sys.exit(max(codes))
