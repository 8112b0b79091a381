import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import fcntl  # noqa: E402
import pathlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from helpers.tiny import TINY  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
FLOWERS = pathlib.Path(os.environ.get("ATTENDNEXT_FLOWERS", REPO.parent / "shared" / "data" / "flowers160"))


@pytest.fixture(scope="session")
def flowers_dir():
    if not FLOWERS.is_dir():
        pytest.fail(f"The shared test images are missing: {FLOWERS} (set ATTENDNEXT_FLOWERS to their folder).")
    return FLOWERS


@pytest.fixture(scope="session")
def flower_images(flowers_dir):
    """Eight real photographs (two per class of the first four), 64×64, float32 pixels in [0, 255]."""
    from PIL import Image

    images = []
    for class_dir in sorted((flowers_dir / "val").iterdir())[:4]:
        for path in sorted(class_dir.glob("*.jpg"))[:2]:
            images.append(np.asarray(Image.open(path).convert("RGB").resize((64, 64)), dtype=np.float32))
    return np.stack(images)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="module", autouse=True)
def _seed_each_module():
    """Seeds Python, NumPy and TensorFlow before each module's fixtures, so random weights and tolerances do not
    depend on which tests ran before in the same worker."""
    import keras

    keras.utils.set_random_seed(0)


def tiny_model(**kwargs):
    import attendnext_keras as an

    return an.AttendNeXt(variant=TINY, input_shape=(32, 32, 3), classes=5, classifier_activation=None, **kwargs)


@pytest.fixture(scope="session")
def tiny_spec_file(tmp_path_factory):
    from attendnext_keras.specs import save_spec

    return save_spec(TINY, tmp_path_factory.mktemp("spec") / "tiny.json")


TRAINED_EPOCHS, TRAINED_SIZE = 12, 32


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """The main job on the embedded photographs at 32 px (12 float epochs, 2 QAT epochs, seed 0): a trained model
    whose outputs depend on the image, with its float32/int8 exports, TFLM comparison on 64 held-out images, C
    sources and summary. Run once per test session: xdist workers share it through a file lock."""
    from attendnext_keras.config import BenchmarkConfig, MicroConfig, ModelConfig, QATConfig, RunConfig, TrainConfig
    from attendnext_keras.pipeline import run

    root = tmp_path_factory.getbasetemp()
    uid = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if uid:  # every worker's basetemp sits in one folder per test run
        root = root.parent / f"trained-{uid}"
    root.mkdir(exist_ok=True)
    out = root / "run"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "summary.json").exists():
            run(RunConfig(out_dir=str(out), model=ModelConfig(name="attendnext_micro", input_size=TRAINED_SIZE),
                          train=TrainConfig(epochs=TRAINED_EPOCHS), qat=QATConfig(epochs=2), micro=MicroConfig(images=64),
                          benchmark=BenchmarkConfig(runs=5, threads=(1,))), verbose=0)
    return out
