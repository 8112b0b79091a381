"""Child process for the SIGKILL test: `attendnext train ARGS...` that kills itself with SIGKILL (no clean-up, as
the OOM killer or a power cut would) right after its second epoch, once that epoch's checkpoint and metrics row are
written (the package's own callbacks run before user callbacks). Killing from inside makes the moment exact, where
a parent polling for ckpt-2 could land its kill an epoch late on a fast machine.

    python killed_train.py --data default --arch tiny.json ... --out DIR
"""

import os
import signal
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402

from attendnext_keras import training  # noqa: E402
from attendnext_keras.cli import main  # noqa: E402

_train = training.train


class DieAfterSecondEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)


def train_then_die(*args, callbacks=(), **kwargs):
    return _train(*args, callbacks=[*callbacks, DieAfterSecondEpoch()], **kwargs)


training.train = train_then_die  # cmd_train imports it when it runs
sys.exit(main(["train", *sys.argv[1:]]))
