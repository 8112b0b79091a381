"""attendnext_keras.saving.load_model: saved models load with our layers registered; wrong files are one line."""

import shutil

import numpy as np
import pytest

import attendnext_keras as an


def test_keras_and_h5_models_load(tmp_path):
    model = an.AttendNeXt(variant="micro", input_shape=(32, 32, 3), classes=3, classifier_activation=None)
    model.save(tmp_path / "m.keras")
    loaded = an.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-5)
    model.save_weights(tmp_path / "w.weights.h5")  # weights only; also copied under a model file's name
    shutil.copy(tmp_path / "w.weights.h5", tmp_path / "w.h5")
    for weights in ("w.weights.h5", "w.h5"):
        with pytest.raises(ValueError, match=rf"'.*{weights}' holds weights only, no model: .*load_weights"):
            an.load_model(tmp_path / weights)


@pytest.mark.parametrize("name, content, message", [
    ("text.keras", b"hello", "is not a Keras model: a .keras file is a zip archive"),
    ("text.h5", b"hello", "is not a Keras model: a .h5 file is an HDF5 file"),
    ("model.onnx", b"hello", "Model files are .keras"),
])
def test_files_that_are_not_models(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        an.load_model(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        an.load_model(tmp_path / "missing.keras")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        an.load_model(tmp_path)


def test_keras_load_model_works_after_importing_the_package_alone(tmp_path):
    """`import attendnext_keras` registers the layer classes as soon as Keras is imported (after it or before it),
    without importing Keras or TensorFlow itself."""
    import subprocess
    import sys

    model = an.AttendNeXt(variant="micro", input_shape=(32, 32, 3), classes=3)
    model.save(tmp_path / "m.keras")
    for order in ("import attendnext_keras, keras", "import keras, attendnext_keras"):
        code = (f"import sys; {order}; m = keras.saving.load_model(sys.argv[1]); print(m.count_params())")
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.keras")], capture_output=True,
                              text=True, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr[-500:]
        assert done.stdout.split()[-1] == str(model.count_params())
