"""attendnext_keras.deploy.litert: the one latency timer, reading .tflite files, accuracy of a .tflite model."""

import numpy as np
import pytest

from attendnext_keras.deploy import litert


@pytest.fixture(scope="module")
def blobs():
    import keras

    from attendnext_keras.deploy.conversion import to_tflite

    def tiny(width):
        image = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(width, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(image))
        return keras.Model(image, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))

    return {"narrow": to_tflite(tiny(4), "float32"), "wide": to_tflite(tiny(64), "float32")}


def test_time_interleaved_gives_every_model_its_samples(blobs):
    samples = litert.time_interleaved(blobs, num_threads=1, runs=12, warmup=1, block=5)
    assert set(samples) == {"narrow", "wide"}
    assert all(len(v) == 15 and min(v) > 0 for v in samples.values())  # rounds of 5 until at least 12
    stats = litert.latency_stats(samples["wide"])
    assert stats["min"] <= stats["median"] <= stats["p90"] <= stats["p99"] <= stats["max"] and stats["runs"] == 15
    assert len(litert.measure_latency(blobs["narrow"], runs=7)) == 7
    with pytest.raises(ValueError, match="runs >= 1"):
        litert.time_interleaved(blobs, runs=0)
    with pytest.raises(ValueError, match="`num_threads` must be a positive integer"):
        litert.load_interpreter(blobs["wide"], num_threads=0)


def test_read_tflite_names_what_is_wrong(tmp_path, blobs):
    path = tmp_path / "m.tflite"
    path.write_bytes(blobs["wide"])
    assert litert.read_tflite(path) == blobs["wide"] and litert.input_size(blobs["wide"]) == (16, 16)
    assert litert.output_classes(blobs["wide"]) == 3
    (tmp_path / "text.tflite").write_text("hello, not a model")
    with pytest.raises(ValueError, match=r"'.*text.tflite' is not a TFLite model"):
        litert.read_tflite(tmp_path / "text.tflite")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        litert.read_tflite(tmp_path / "missing.tflite")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        litert.read_tflite(tmp_path)


def test_evaluate_tflite_counts_correct_answers(blobs):
    """Labels chosen from the model's own answers: top-1 is exactly the fraction kept."""
    images = np.random.default_rng(0).uniform(0, 255, (10, 16, 16, 3)).astype(np.float32)
    interpreter = litert.load_interpreter(blobs["wide"])
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    answers = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        answers.append(int(np.argmax(interpreter.get_tensor(out["index"]))))
    labels = np.array(answers)
    labels[:3] = (labels[:3] + 1) % 3  # three wrong
    dataset = [(images[:6], labels[:6]), (images[6:], labels[6:])]
    assert litert.evaluate_tflite(blobs["wide"], dataset) == {"top1": 0.7, "examples": 10}
    with pytest.raises(ValueError, match="class index 5 but the model has 3 outputs"):
        litert.evaluate_tflite(blobs["wide"], [(images[:2], np.array([0, 5]))])
