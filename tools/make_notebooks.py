"""Writes the Colab notebooks in notebooks/ from the Python strings below, without outputs.

    python tools/make_notebooks.py            # (re)write notebooks/*.ipynb
    python tools/make_notebooks.py --check    # exit 1 if a notebook differs from what this script writes

The notebooks are generated so that they stay reviewable (the cells are plain strings here) and clean (no outputs,
execution_count null, fixed cell ids, so regenerating gives identical files). Edit the cells here, not in Jupyter.
CI executes them with tools/run_notebooks.py under ATTENDNEXT_SMALL=1.
"""

import argparse
import ast
import pathlib
import sys
import textwrap

import nbformat

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
# The GitHub repository the Colab badges and the install cell point to. The owner is a placeholder until the
# repository is published (notebooks/README.md says so); change it here and rerun this script.
REPOSITORY = "attendnext/attendnext_keras"


def colab_url(name: str) -> str:
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/{name}"


def md(text):
    return ("markdown", text)


def code(*parts):
    """A code cell from pieces of indented source, each dedented on its own."""
    return ("code", "\n\n".join(textwrap.dedent(part).strip("\n") for part in parts))


def header(name, title, intro, gpu=False):
    """The opening markdown cell (title, Colab badge, what the notebook does) and the install cell."""
    runtime = "On Colab, pick a GPU runtime (*Runtime → Change runtime type*) for the full settings. " if gpu else ""
    return [
        md(f"# {title}\n\n"
           f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(name)})\n\n"
           f"{intro}\n\n"
           f"{runtime}The first code cell installs `attendnext_keras` on Colab (if Colab then asks to restart the "
           f"runtime, restart and run on from the second code cell); elsewhere it does nothing: install the package "
           f"yourself (`pip install -e .` in a clone). `ATTENDNEXT_SMALL=1` in the environment selects tiny settings "
           f"that run in a few minutes on a CPU and download nothing (what CI runs); without it the notebook uses "
           f"the full settings below."),
        code(f'''
            # On Colab: install attendnext_keras from GitHub. Anywhere else this cell does nothing.
            import sys

            REPOSITORY = "{REPOSITORY}"  # placeholder owner, see notebooks/README.md
            if "google.colab" in sys.modules:
                import subprocess

                subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"git+https://github.com/{{REPOSITORY}}"],
                               check=True)
            '''),
    ]


SETTINGS_PREAMBLE = '''
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep its C++ logs short
    SMALL = os.environ.get("ATTENDNEXT_SMALL") == "1"  # tiny settings (CI): minutes on a CPU, no downloads
'''

# The data settings shared by the training notebooks: an image folder or a TFDS name; ATTENDNEXT_DATA overrides.
DATA_SETTINGS = '''
    # Your data: an image folder laid out as ROOT/train/<class>/*.jpg and ROOT/val/<class>/*.jpg, or a TensorFlow
    # Datasets name. The environment variable ATTENDNEXT_DATA overrides the choice below.
    DATA = os.environ.get("ATTENDNEXT_DATA") or (
        str(data.default_data_dir())  # small: the embedded flowers_mini folder, 5 classes, 400 + 100 photos
        if SMALL else "tf_flowers")  # full: TFDS tf_flowers (downloads 220 MB), 3,670 photos of 5 classes
    if SMALL and not os.path.isdir(DATA):
        raise ValueError(f"Small settings never download: ATTENDNEXT_DATA must be an image folder. Received: {DATA}")
    # An image folder has train/ and val/; tf_flowers has one split, so hold out its last 15 %.
    TRAIN_SPLIT, VAL_SPLIT = ("train", "val") if os.path.isdir(DATA) else ("train[:85%]", "train[85%:]")
'''


# --------------------------------------------------------------------------------------------------------------------
# 01: quickstart

QUICKSTART = [
    *header(
        "01_quickstart.ipynb", "AttendNeXt quickstart: build, profile, look inside a DC-AC",
        "Build AttendNeXt (Wong et al. 2022, [arXiv:2208.06980](https://arxiv.org/abs/2208.06980)), read its "
        "layout and profile (parameters and multiply-accumulates per stage), look at the attention map of one "
        "double-condensing attention condenser (DC-AC) on a real photograph, and compare the model's size and "
        "compute with MobileNetV3."),
    code(SETTINGS_PREAMBLE, '''
        import keras
        import matplotlib.pyplot as plt
        import numpy as np

        import attendnext_keras as an
        from attendnext_keras import data
        from attendnext_keras.preprocessing import preprocess_image

        VARIANTS = ["base", "micro"] if SMALL else an.list_variants()  # the AttendNeXt variants to compare
        PEER_NAMES = ["mobilenet_v3_large"] if SMALL else ["mobilenet_v3_large", "mobilenet_v3_small"]
        print(f"attendnext_keras {an.__version__}, Keras {keras.__version__}, small settings: {SMALL}")
        '''),
    md("## 1. Build\n\n"
       "`AttendNeXt` has the signature of `keras.applications` (`include_top`, `weights`, `input_shape`, "
       "`pooling`, `classes`, `classifier_activation`) plus `variant` (`base` at paper scale, `medium` and `small` "
       "at 224 px, `micro` at 96 px for microcontrollers; `base_v0` and `small_v0` are the first design). The architecture is data (`an.VARIANTS`, frozen dataclasses); `summarize_spec` "
       "prints one line per stage: parallel columns of blocks, anti-aliased downsampling (AADS) between stages, "
       "DC-AC blocks with their condense factor `s`."),
    code('''
        model = an.AttendNeXt(variant="base")  # 224×224×3 pixels in [0, 255] → 1000 class probabilities
        print(an.summarize_spec("base"))
        print(f"\\n{model.name}: {len(model.layers)} layers, {model.count_params():,} parameters")
        '''),
    md("## 2. Profile\n\n"
       "`an.profile(model)` counts parameters and multiply-accumulates (MACs) per layer and groups them by stage; "
       "it also estimates the peak int8 activation memory. Parameters include BatchNormalization statistics, which "
       "fold into the convolutions on conversion to TFLite."),
    code('''
        base_profile = an.profile(model)
        print(base_profile.table())

        groups = {name: g for name, g in base_profile.by_group().items() if name != "input"}
        fig, axes = plt.subplots(1, 2, figsize=(11, 3))
        axes[0].bar(list(groups), [g["params"] / 1e6 for g in groups.values()], color="tab:blue")
        axes[0].set_ylabel("parameters (M)")
        axes[1].bar(list(groups), [g["macs"] / 1e6 for g in groups.values()], color="tab:orange")
        axes[1].set_ylabel("MACs (M)")
        for ax in axes:
            ax.tick_params(axis="x", rotation=30)
        fig.suptitle(f"{model.name} at 224 px, per stage")
        fig.tight_layout()
        plt.show()
        '''),
    md("## 3. Inside a DC-AC: the attention map\n\n"
       "A DC-AC block condenses its input `V` with a max-pool (`Q = MaxPool_s(V)`), then computes two embeddings "
       "of `Q`: the attention `A = σ(PW_C(Emb_a(Q)))` and the features `B = PW_C(Emb_b(Q))`; its output is "
       "`V' = Up_s(A ⊙ B) + V`. The builder lays each block out as built-in layers with fixed names "
       "`{block}_condense`, `{block}_attention_dw`, …, `{block}_sigmoid` (that is `A`), `{block}_attend`, "
       "`{block}_upsample`, `{block}_residual`, so a `keras.Model` that ends at `{block}_sigmoid` returns `A`: "
       "one value in (0, 1) per channel at the condensed resolution.\n\n"
       "The weights here are random (no ImageNet weights are published yet): untrained, `A` stays close to 0.5 "
       "everywhere (each panel has its own colour scale) and shows what the untrained condenser picks out, not "
       "learned attention. After notebook 02 has run in the same folder, its trained model "
       "(`runs/notebook02/best.keras`) is used instead."),
    code('''
        TRAINED = "runs/notebook02/best.keras"  # written by notebook 02
        probe_source = an.load_model(TRAINED) if os.path.exists(TRAINED) else model
        sigmoids = [layer.name for layer in probe_source.layers if layer.name.endswith("_sigmoid")]
        trained = probe_source is not model
        print(f"attention maps of {probe_source.name} ({'trained' if trained else 'random weights'}):")
        for name in sigmoids:
            print(f"  {name:<36} {tuple(probe_source.get_layer(name).output.shape[1:])}")

        LAYER = sigmoids[0]  # the first DC-AC of stage 1
        block = LAYER[: -len("sigmoid")]
        print(f"\\nthe layers of block {block[:-1]}:", ", ".join(l.name[len(block):] for l in probe_source.layers
                                                              if l.name.startswith(block)))
        probe = keras.Model(probe_source.input, probe_source.get_layer(LAYER).output, name="attention_probe")
        '''),
    code('''
        size = probe.inputs[0].shape[1]
        val_source = data.load_source("default", "val")  # embedded photographs, shipped with the package
        picks = [val_source.labels.index(c) for c in range(3)]  # the first image of three classes
        images = np.stack([preprocess_image(val_source.files[i], size) for i in picks])  # resize + center crop
        attention = np.asarray(probe(images))  # (3, H/s, W/s, C) in (0, 1)

        fig, axes = plt.subplots(len(picks), 4, figsize=(12, 3 * len(picks)))
        for row, (i, image, a) in enumerate(zip(picks, images, attention)):
            strongest = np.argsort(-a.std(axis=(0, 1)))[:2]  # the two channels whose attention varies most
            panels = [("image: " + val_source.class_names[val_source.labels[i]], None),
                      ("A, mean over channels", a.mean(-1)),
                      (f"A, channel {strongest[0]}", a[..., strongest[0]]),
                      (f"A, channel {strongest[1]}", a[..., strongest[1]])]
            for ax, (title, panel) in zip(axes[row], panels):
                ax.imshow(image.astype("uint8"))
                if panel is not None:  # A lives on the condensed grid: stretch it over the image
                    shown = ax.imshow(panel, cmap="inferno", alpha=0.6, extent=(0, size, size, 0),
                                      interpolation="nearest")
                    fig.colorbar(shown, ax=ax, fraction=0.046)
                ax.set_title(title, fontsize=9)
                ax.axis("off")
        fig.suptitle(f"{LAYER}: attention A at {attention.shape[1]}×{attention.shape[2]} over a {size}-px input")
        fig.tight_layout()
        plt.show()
        '''),
    md("## 4. AttendNeXt against MobileNetV3\n\n"
       "`an.create_model` builds any model of the registry (`an.list_models()`: the AttendNeXt variants and the "
       "networks AttendNeXt is benchmarked against; float Keras models with random weights, logits out); the same "
       "`profile` counts their parameters and MACs at 224 px, 1000 classes. Latency on a CPU: "
       "`attendnext benchmark` (or `benchmarks/bench_peers.py`) and notebook 03."),
    code('''
        from IPython.display import Markdown, display

        rows = []
        for variant in VARIANTS:
            built = model if variant == "base" else an.AttendNeXt(variant=variant)
            p = base_profile if variant == "base" else an.profile(built)
            rows.append((f"AttendNeXt {variant}", built.inputs[0].shape[1], p.params, p.macs,
                         p.peak_activation_bytes))
        for name in PEER_NAMES:
            peer = an.create_model(name, input_size=224, classes=1000)  # logits, random weights
            p = an.profile(peer)
            rows.append((name, 224, p.params, p.macs, p.peak_activation_bytes))

        table = ["| model | input | params (M) | MACs (M) | peak int8 activations (KiB) |", "|---|---|---|---|---|"]
        table += [f"| {name} | {pixels} | {params / 1e6:.2f} | {macs / 1e6:.1f} | {peak / 1024:.0f} |"
                  for name, pixels, params, macs, peak in rows]
        display(Markdown("\\n".join(table)))
        '''),
    md("Next: notebook 02 trains AttendNeXt on your images, 03 takes it through quantization-aware training to int8 "
       "TFLite, 04 runs it on TensorFlow Lite Micro."),
]


# --------------------------------------------------------------------------------------------------------------------
# 02: train on your data

TRAIN = [
    *header(
        "02_train_on_your_data.ipynb", "Train AttendNeXt on your images",
        "Train AttendNeXt on an image folder (or a TensorFlow Datasets set) with the package's training API "
        "(`attendnext_keras.training.train` and `attendnext_keras.config.TrainConfig`), plot the learning curves "
        "and the confusion matrix on the held-out images. The same run from the command line: "
        "`attendnext train --data FOLDER`.", gpu=True),
    code(SETTINGS_PREAMBLE, '''
        import csv

        import matplotlib.pyplot as plt
        import numpy as np

        import attendnext_keras as an
        from attendnext_keras import _io, data
        from attendnext_keras.config import TrainConfig
        from attendnext_keras.training import configure_mixed_precision, evaluate, make_strategy, train
        ''', DATA_SETTINGS, '''
        if SMALL:
            VARIANT, IMAGE_SIZE, EPOCHS, BATCH_SIZE = "micro", 64, 3, 32
        else:
            VARIANT, IMAGE_SIZE, EPOCHS, BATCH_SIZE = "small", 160, 40, 64
        OUT_DIR = "runs/notebook02"  # checkpoints, best.keras, final.keras, metrics.csv, TensorBoard logs
        RESUME = False  # True continues an interrupted run from its last checkpoint in OUT_DIR

        # One device, several GPUs or a TPU; it must come before any other TensorFlow op.
        strategy = None if SMALL else make_strategy("auto")
        print(f"data {DATA} ({TRAIN_SPLIT} / {VAL_SPLIT}), AttendNeXt {VARIANT} at {IMAGE_SIZE} px, {EPOCHS} epochs")
        '''),
    md("## 1. Data\n\n"
       "`data.load_splits` reads the training and held-out splits of an image folder `ROOT/<split>/<class>/*` "
       "(classes in sorted order; every image is decoded once up front, so a corrupt file is skipped with a logged "
       "warning instead of stopping training mid-epoch) or of a TFDS set, and checks that both have the same "
       "classes. `data.make_dataset` gives batches of float32 pixels in [0, 255] (the models rescale "
       "themselves) and int32 labels; training batches get a random resized crop and a horizontal flip."),
    code('''
        train_source, val_source = data.load_splits(DATA, TRAIN_SPLIT, VAL_SPLIT)  # same classes, same order
        class_names = train_source.class_names
        print(f"{train_source.num_examples} training and {val_source.num_examples} validation images, "
              f"{len(class_names)} classes: {', '.join(class_names)}")

        train_ds = data.make_dataset(train_source, IMAGE_SIZE, BATCH_SIZE, training=True, seed=0,
                                     crop_scale=(0.25, 1.0))
        val_ds = data.make_dataset(val_source, IMAGE_SIZE, BATCH_SIZE, training=False)

        images, labels = next(iter(train_ds))
        fig, axes = plt.subplots(2, 8, figsize=(14, 4))
        for ax, image, label in zip(axes.flat, images.numpy(), labels.numpy()):
            ax.imshow(image.astype("uint8"))
            ax.set_title(class_names[label], fontsize=9)
            ax.axis("off")
        fig.suptitle("augmented training images")
        plt.show()
        '''),
    md("## 2. Train\n\n"
       "`train` compiles and fits with the recipe in `TrainConfig`: AdamW, warmup then cosine decay, label "
       "smoothing; `bn_momentum=0.9` lets the BatchNormalization statistics settle within a short run (Keras' "
       "default 0.99 lags behind). The model outputs logits (`classifier_activation=None`), which is what the "
       "int8 export and TFLite Micro want. After every epoch a checkpoint lands in `OUT_DIR` (`RESUME = True` "
       "continues from it), and the best model by validation accuracy is saved as `best.keras`. "
       "`configure_mixed_precision` picks float16 on a GPU, bfloat16 on a TPU and float32 on a CPU."),
    code('''
        config = TrainConfig(epochs=EPOCHS, batch_size=BATCH_SIZE, seed=0)  # learning rate 3e-3, bn_momentum 0.9
        print("precision:", configure_mixed_precision(config.mixed_precision))
        result = train(lambda: an.AttendNeXt(variant=VARIANT, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                             classes=len(class_names), classifier_activation=None),
                       train_ds, val_ds, config, out_dir=OUT_DIR, resume=RESUME, overwrite=not RESUME,
                       strategy=strategy)
        model = result.model
        # the CLI (attendnext evaluate/export) reads the names from here; written atomically, like every package file
        _io.write_json(os.path.join(OUT_DIR, "class_names.json"), class_names)
        print(f"best model: {result.best_path}\\nfinal model: {result.final_path}")
        '''),
    md("## 3. Learning curves\n\n"
       "`result.history` holds the epochs of this call; `metrics.csv` in `OUT_DIR` holds every epoch, also across "
       "resumed runs, so the curves come from there."),
    code('''
        with open(os.path.join(OUT_DIR, "metrics.csv")) as f:
            metrics = list(csv.DictReader(f))
        epochs = [int(row["epoch"]) + 1 for row in metrics]

        def column(key):
            return [float(row[key]) for row in metrics]

        fig, axes = plt.subplots(1, 3, figsize=(14, 3.5))
        for key in ("loss", "val_loss"):
            axes[0].plot(epochs, column(key), marker="o", label=key)
        for key in ("accuracy", "val_accuracy"):
            axes[1].plot(epochs, column(key), marker="o", label=key)
        axes[2].plot(epochs, column("learning_rate"), marker="o", label="learning rate (end of epoch)")
        for ax, title in zip(axes, ("loss", "top-1 accuracy", "learning rate")):
            ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_title(title)
            ax.legend()
        fig.tight_layout()
        plt.show()
        '''),
    md("## 4. Confusion matrix on the validation images\n\n"
       "Rows are the true classes, columns the predicted ones; the diagonal holds the correct predictions."),
    code('''
        true, predicted = [], []
        for images, labels in val_ds:
            logits = model(images, training=False)
            predicted.append(np.argmax(np.asarray(logits), axis=-1))
            true.append(np.asarray(labels))
        true, predicted = np.concatenate(true), np.concatenate(predicted)
        n = len(class_names)
        confusion = np.zeros((n, n), dtype=int)
        np.add.at(confusion, (true, predicted), 1)

        top1 = np.trace(confusion) / confusion.sum()
        assert abs(top1 - evaluate(model, val_ds)["top1"]) < 1e-6  # the package's evaluation agrees
        fig, ax = plt.subplots(figsize=(1.2 * n + 2, 1.2 * n + 1))
        ax.imshow(confusion, cmap="Blues")
        for i in range(n):
            for j in range(n):
                ax.text(j, i, confusion[i, j], ha="center", va="center",
                        color="white" if confusion[i, j] > confusion.max() / 2 else "black")
        ax.set_xticks(range(n), class_names, rotation=45, ha="right")
        ax.set_yticks(range(n), class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"validation top-1 {top1:.1%} ({confusion.sum()} images)")
        fig.tight_layout()
        plt.show()
        recall = confusion.diagonal() / np.maximum(1, confusion.sum(axis=1))
        print("per-class recall:", ", ".join(f"{c} {r:.0%}" for c, r in zip(class_names, recall)))
        '''),
    md("Next: notebook 03 fine-tunes a trained model with quantization-aware training and exports it to int8 "
       "TFLite (`attendnext qat --model runs/notebook02/best.keras --data ...` does the same from the command "
       "line)."),
]


# --------------------------------------------------------------------------------------------------------------------
# 03: QAT to int8 TFLite

QAT = [
    *header(
        "03_qat_to_int8_tflite.ipynb", "From float training to an int8 TFLite model with quantization-aware training",
        "Train AttendNeXt in float, fine-tune it with quantization-aware training (QAT, tensorflow-model-"
        "optimization), export float32 and int8 `.tflite` files, and compare the formats' accuracy, size and "
        "LiteRT latency side by side. The int8 model runs as one XNNPACK partition; the conversion report says so "
        "(or names the layers that fall out). `attendnext run` does all of this in one command.", gpu=True),
    code(SETTINGS_PREAMBLE, '''
        import matplotlib.pyplot as plt
        import numpy as np
        from IPython.display import Markdown, display

        import attendnext_keras as an
        from attendnext_keras import data
        from attendnext_keras.config import TrainConfig
        from attendnext_keras.deploy.export import export
        from attendnext_keras.deploy.litert import evaluate_tflite, measure_latency, read_tflite
        from attendnext_keras.deploy.predictor import Predictor, format_predictions
        from attendnext_keras.quantization import fine_tune
        from attendnext_keras.training import evaluate, train
        ''', DATA_SETTINGS, '''
        if SMALL:
            VARIANT, IMAGE_SIZE, EPOCHS, QAT_EPOCHS, BATCH_SIZE, LATENCY_RUNS = "micro", 64, 3, 1, 32, 50
        else:
            VARIANT, IMAGE_SIZE, EPOCHS, QAT_EPOCHS, BATCH_SIZE, LATENCY_RUNS = "small", 160, 40, 5, 64, 200
        THREADS = 1  # LiteRT threads for the latency measurement
        OUT_DIR = "runs/notebook03"
        os.makedirs(OUT_DIR, exist_ok=True)

        train_source, val_source = data.load_splits(DATA, TRAIN_SPLIT, VAL_SPLIT)
        class_names = train_source.class_names
        train_ds = data.make_dataset(train_source, IMAGE_SIZE, BATCH_SIZE, training=True, seed=0,
                                     crop_scale=(0.25, 1.0))
        val_ds = data.make_dataset(val_source, IMAGE_SIZE, BATCH_SIZE, training=False)
        print(f"{train_source.num_examples} training / {val_source.num_examples} validation images of "
              f"{len(class_names)} classes; AttendNeXt {VARIANT} at {IMAGE_SIZE} px")
        '''),
    md("## 1. Float training\n\n"
       "As in notebook 02, in float32 (the QAT model is built from these weights). The model ends in logits."),
    code('''
        float_run = train(lambda: an.AttendNeXt(variant=VARIANT, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                                classes=len(class_names), classifier_activation=None),
                          train_ds, val_ds,
                          TrainConfig(epochs=EPOCHS, batch_size=BATCH_SIZE, mixed_precision="float32", seed=0),
                          out_dir=os.path.join(OUT_DIR, "float"), overwrite=True)
        float_model = float_run.model
        '''),
    md("## 2. Quantization-aware fine-tuning\n\n"
       "`fine_tune` rebuilds the Keras 3 model in tf-keras (same layers, same weights, outputs compared), "
       "annotates every layer for 8-bit quantization (BatchNormalization folds into its convolution; AttendNeXt's "
       "`Multiply`, `BlurPool2D` and the input `Rescaling` get their own quantization configs) and trains with "
       "`TrainConfig.qat()` (a `QATConfig`): a few epochs at a learning rate ~30× lower, no warmup, BatchNorm "
       "statistics frozen. The fake-quant ranges it learns become the int8 scales, so the export needs no "
       "calibration data."),
    code('''
        qat_run = fine_tune(float_model, train_ds, val_ds, TrainConfig.qat(epochs=QAT_EPOCHS, batch_size=BATCH_SIZE),
                            out_dir=os.path.join(OUT_DIR, "qat"), overwrite=True)
        qat_model = qat_run.model
        print(f"QAT model: {qat_run.final_path} (load it with an.load_model, which opens a quantize_scope)")
        '''),
    md("## 3. Export float32 and int8\n\n"
       "`export` writes `model.tflite` and `model.json` (input size, preprocessing, int8 scale and zero point, "
       "logits or probabilities, class names) and returns a `ConversionReport`: ops, float tensors, XNNPACK "
       "partitions, size, and whether TensorFlow Lite Micro runs the model. The int8 model has int8 input and "
       "output tensors.\n\n"
       "For an Arm CPU without int8 dot products (Cortex-A72, A53) or an x86 CPU, `export(float_model, path, "
       "\"int8-ptq-float-stem\", representative_data=images)` is often faster still: post-training quantization "
       "with the input scaling and first convolution left in float32, because XNNPACK's int8 kernels run a "
       "3-channel first layer slowly (`benchmarks/RESULTS.md`, \"int8 with a float32 stem\"). Microcontrollers "
       "and Ethos-U NPUs need the fully int8 model below."),
    code('''
        exports = {
            "float32": export(float_model, os.path.join(OUT_DIR, "model_float32.tflite"), "float32",
                              class_names=class_names),
            "int8": export(qat_model, os.path.join(OUT_DIR, "model_int8.tflite"), "int8", class_names=class_names),
        }
        blobs = {mode: read_tflite(result.path) for mode, result in exports.items()}
        for mode, result in exports.items():
            print(f"--- {result.path}\\n{result.report.summary()}\\n")
        '''),
    md("## 4. Accuracy, size and latency of each format\n\n"
       "Top-1 on the validation images; the TFLite files run on LiteRT with XNNPACK at batch 1 (the int8 model "
       "gets its input quantized with the scale and zero point of its input tensor). Latency is the median of "
       "`LATENCY_RUNS` invocations on this machine's CPU with `THREADS` thread(s)."),
    code('''
        rows = [
            {"format": "Keras float32", "top1": evaluate(float_model, val_ds)["top1"]},
            {"format": "Keras QAT (fake-quant)", "top1": evaluate(qat_model, val_ds)["top1"]},
        ]
        for mode, label in (("float32", "TFLite float32"), ("int8", "TFLite int8 (QAT)")):
            latencies = measure_latency(blobs[mode], num_threads=THREADS, runs=LATENCY_RUNS)
            rows.append({"format": label, "top1": evaluate_tflite(blobs[mode], val_ds)["top1"],
                         "size_kib": exports[mode].report.size_bytes / 1024,
                         "latency_ms": float(np.median(latencies)),
                         "partitions": exports[mode].report.partitions})

        def cell(row, key, fmt):
            return fmt.format(row[key]) if key in row else "—"

        table = [f"| format | top-1 | size (KiB) | latency (ms, {THREADS} thread) | XNNPACK partitions |",
                 "|---|---|---|---|---|"]
        table += [f"| {row['format']} | {cell(row, 'top1', '{:.1%}')} | {cell(row, 'size_kib', '{:.1f}')} | "
                  f"{cell(row, 'latency_ms', '{:.3f}')} | {cell(row, 'partitions', '{}')} |" for row in rows]
        display(Markdown("\\n".join(table)))
        '''),
    code('''
        fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
        colors = ["tab:blue", "tab:cyan", "tab:orange", "tab:red"]
        axes[0].bar([r["format"] for r in rows], [100 * r["top1"] for r in rows], color=colors)
        axes[0].set_ylabel("validation top-1 (%)")
        tflite_rows = [r for r in rows if "latency_ms" in r]
        axes[1].bar([r["format"] for r in tflite_rows], [r["latency_ms"] for r in tflite_rows], color=colors[2:])
        axes[1].set_ylabel(f"LiteRT latency (ms, {THREADS} thread)")
        axes[2].bar([r["format"] for r in tflite_rows], [r["size_kib"] for r in tflite_rows], color=colors[2:])
        axes[2].set_ylabel("file size (KiB)")
        for ax in axes:
            ax.tick_params(axis="x", rotation=20)
        fig.suptitle(f"AttendNeXt {VARIANT} at {IMAGE_SIZE} px")
        fig.tight_layout()
        plt.show()
        '''),
    md("## 5. The XNNPACK partition report\n\n"
       "XNNPACK, LiteRT's default CPU delegate, is fast only for the ops it takes: every op it leaves out splits "
       "the graph into more partitions, with a copy between LiteRT's kernels and XNNPACK at each boundary. "
       "AttendNeXt's int8 model is built to run as a single partition, with no float op; the report lists the "
       "layers responsible when that is not so."),
    code('''
        report = exports["int8"].report
        print(report.summary())
        print(f"\\nfully int8: {report.fully_int8}; XNNPACK partitions: {report.partitions}; "
              f"ops outside XNNPACK: {[str(op) for op in report.outside_xnnpack] or 'none'}")
        print("problems:", report.problems() or "none")
        '''),
    md("## 6. Run the exported model without TensorFlow\n\n"
       "`Predictor` needs only `ai_edge_litert`, NumPy and Pillow: it reads `model.json`, resizes and center-crops "
       "any image as the evaluation pipeline does, quantizes it for the int8 input and turns the logits into "
       "probabilities. On a device: `attendnext predict IMAGE --model model_int8.tflite`."),
    code('''
        predictor = Predictor(exports["int8"].path)
        files = [val_source.files[val_source.labels.index(c)] for c in range(min(3, len(class_names)))] \\
            if val_source.files else []  # a TFDS split has no files: pass PIL images or arrays instead
        if files:
            print(predictor)
            print(format_predictions([os.path.basename(f) for f in files], predictor.predict(files, top_k=3)))
        '''),
    md("## 7. Attention you can look at\n\n"
       "Every DC-AC module computes attention values A = σ(…) at its condensed resolution. `keras_attention` and "
       "`tflite_attention` read their channel mean for the QAT model and for the int8 model (whose LOGISTIC "
       "outputs LiteRT keeps with `experimental_preserve_all_tensors`), drawn here over the photographs the model "
       "saw: the two should look the same. From the command line: `attendnext explain IMAGE... --model m.tflite`."),
    code('''
        from PIL import Image

        from attendnext_keras.experiments.explain import keras_attention, tflite_attention
        from attendnext_keras.preprocessing import preprocess_image

        if files:
            pixels = np.stack([preprocess_image(f, IMAGE_SIZE) for f in files])
            float_maps = keras_attention(qat_model, pixels)
            int8_maps = tflite_attention(open(exports["int8"].path, "rb").read(), pixels)
            modules = list(float_maps)
            fig, axes = plt.subplots(2 * len(files), len(modules) + 1,
                                     figsize=(1.6 * (len(modules) + 1), 3.2 * len(files)), squeeze=False)
            for i in range(len(files)):
                for row, (maps, kind) in enumerate(((float_maps, "QAT"), (int8_maps, "int8"))):
                    ax_row = axes[2 * i + row]
                    ax_row[0].imshow(pixels[i].astype("uint8"))
                    ax_row[0].set_title(kind, fontsize=7)
                    for ax, module in zip(ax_row[1:], modules):
                        overlay = Image.fromarray(maps[module][i]).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
                        ax.imshow(pixels[i].astype("uint8"))
                        ax.imshow(np.asarray(overlay), cmap="inferno", alpha=0.55, vmin=0, vmax=1)
                        ax.set_title(module.replace("_dcac", ""), fontsize=5)
            for ax in axes.ravel():
                ax.axis("off")
            fig.tight_layout()
            plt.show()
            worst = max(float(np.abs(float_maps[m] - int8_maps[m]).max()) for m in modules)
            print(f"largest difference between the QAT and the int8 attention values: {worst:.4f}")
        '''),
]


# --------------------------------------------------------------------------------------------------------------------
# 04: TensorFlow Lite Micro

MICRO = [
    *header(
        "04_tflite_micro.ipynb", "AttendNeXt micro on TensorFlow Lite Micro",
        "Make an int8 model of the `micro` variant, run it on TensorFlow Lite Micro (TFLM: the `tflite-micro` "
        "Python interpreter is the reference runtime built for the host, with the kernels and memory planner of a "
        "Cortex-M), read the tensor arena it needs, check its outputs against LiteRT, and write the C array and "
        "op resolver a microcontroller project compiles (see `tflite/README.md` and `tflite/app/main.cc`)."),
    code(SETTINGS_PREAMBLE, '''
        import matplotlib.pyplot as plt

        import attendnext_keras as an
        from attendnext_keras import data
        from attendnext_keras.config import TrainConfig
        from attendnext_keras.deploy.export import export
        from attendnext_keras.deploy.litert import evaluate_tflite, read_tflite
        from attendnext_keras.deploy.micro import (MicroRunner, compare_with_litert, model_ops, own_rounding_by_op,
                                                   strip_for_micro, write_c_sources)
        from attendnext_keras.training import train

        if SMALL:  # the embedded photographs; micro at 64 px, a short training
            DATA, IMAGE_SIZE, EPOCHS, CALIBRATION_IMAGES, COMPARE_IMAGES = str(data.default_data_dir()), 64, 3, 100, 16
        else:  # tf_flowers from TFDS (or ATTENDNEXT_DATA), the micro variant's own 96 px
            DATA, IMAGE_SIZE, EPOCHS, CALIBRATION_IMAGES, COMPARE_IMAGES = "tf_flowers", 96, 30, 300, 200
        DATA = os.environ.get("ATTENDNEXT_DATA") or DATA
        if SMALL and not os.path.isdir(DATA):
            raise ValueError(f"Small settings never download: ATTENDNEXT_DATA must be an image folder. "
                             f"Received: {DATA}")
        TRAIN_SPLIT, VAL_SPLIT = ("train", "val") if os.path.isdir(DATA) else ("train[:85%]", "train[85%:]")
        OUT_DIR = "runs/notebook04"
        os.makedirs(OUT_DIR, exist_ok=True)
        '''),
    md("## 1. An int8 micro model\n\n"
       "A short float training, then post-training quantization (`int8-ptq`) calibrated on training images: "
       "quick, and TFLM needs nothing more than a fully int8 model. Quantization-aware training (notebook 03) "
       "keeps more accuracy; to use a model from there or from `attendnext run`, set "
       "`blob = read_tflite(\"runs/notebook03/model_int8.tflite\")` and go on from section 2."),
    code('''
        train_source, val_source = data.load_splits(DATA, TRAIN_SPLIT, VAL_SPLIT)
        class_names = train_source.class_names
        train_ds = data.make_dataset(train_source, IMAGE_SIZE, 32, training=True, seed=0, crop_scale=(0.25, 1.0))
        val_ds = data.make_dataset(val_source, IMAGE_SIZE, 32, training=False)

        run = train(lambda: an.AttendNeXt(variant="micro", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                          classes=len(class_names), classifier_activation=None),
                    train_ds, val_ds,
                    TrainConfig(epochs=EPOCHS, batch_size=32, mixed_precision="float32", seed=0),
                    out_dir=os.path.join(OUT_DIR, "float"), overwrite=True)
        model = run.model

        calibration = data.calibration_images(train_source, IMAGE_SIZE, count=CALIBRATION_IMAGES)
        exported = export(model, os.path.join(OUT_DIR, "model_int8.tflite"), "int8-ptq",
                          representative_data=calibration, class_names=class_names)
        blob = read_tflite(exported.path)
        print(exported.report.summary())
        '''),
    md("## 2. Memory: the tensor arena\n\n"
       "TFLM keeps every tensor in one static buffer, the arena, which the application reserves in RAM; "
       "`MicroRunner.arena_bytes` reads its size from TFLM's allocator and `MicroRunner.arena_usage` splits it "
       "into the *planned* part (activation tensors placed by the memory planner, and kernels' scratch buffers) "
       "and the *persistent* part (TFLM's per-tensor and per-op data, which grows with the number of ops, not with "
       "the image). `an.profile` estimates the planned part from the Keras graph, without converting. The weights "
       "stay in flash: the model array is `const`."),
    code('''
        runner = MicroRunner(blob)
        usage = runner.arena_usage
        estimate = an.profile(model).peak_activation_bytes
        print(f"TFLM tensor arena:           {runner.arena_bytes:>9,} bytes of RAM")
        print(f"  planned (activations):     {usage['planned']:>9,} bytes (profile's estimate: {estimate:,})")
        print(f"  persistent (TFLM's data):  {usage['persistent']:>9,} bytes")
        print(f"model:                       {len(blob):>9,} bytes of flash, of which weights "
              f"{exported.report.weight_bytes:,}")
        print(f"ops to register: {', '.join(model_ops(blob))}")

        fig, ax = plt.subplots(figsize=(9, 2.2))
        ax.barh(["RAM: arena"], [usage["planned"] / 1024], color="tab:red", label="planned activations")
        ax.barh(["RAM: arena"], [usage["persistent"] / 1024], left=[usage["planned"] / 1024], color="tab:pink",
                label="persistent")
        ax.barh(["flash: model"], [len(blob) / 1024], color="tab:blue", label="model file")
        ax.set_xlabel("KiB")
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title(f"AttendNeXt micro, int8, {IMAGE_SIZE} px, {len(class_names)} classes")
        fig.tight_layout()
        plt.show()
        '''),
    md("## 3. TFLM against LiteRT\n\n"
       "`compare_with_litert` runs the same int8 inputs through TFLM, LiteRT's reference kernels and LiteRT with "
       "XNNPACK, and reports the largest output difference in quantization steps (LSB) and how often the top-1 "
       "class agrees. `own_rounding_by_op` then goes op by op (`compare_ops_with_litert`): on bit-identical "
       "inputs, convolutions may requantize 1 LSB apart in the two runtimes and every other op should match "
       "exactly; those single steps add up over the network to a few LSB on the logits, while the top-1 class "
       "should agree."),
    code('''
        images = data.calibration_images(val_source, IMAGE_SIZE, count=COMPARE_IMAGES)
        comparison = compare_with_litert(blob, images)
        for key, value in comparison.items():
            print(f"{key:<30} {value}")

        litert_top1 = evaluate_tflite(blob, val_ds)["top1"]
        tflm_top1 = evaluate_tflite(blob, val_ds, runner=runner)["top1"]
        print(f"\\nvalidation top-1: LiteRT {litert_top1:.1%}, TFLite Micro {tflm_top1:.1%} "
              f"({val_source.num_examples} images)")
        '''),
    code('''
        # per op type: the largest LSB difference of TFLM's output on bit-identical inputs (compare_ops_with_litert)
        for op, (count, lsb) in sorted(own_rounding_by_op(blob, images).items()):
            print(f"{op:<22} ≤ {lsb} LSB")
        '''),
    md("## 4. C sources for a microcontroller project\n\n"
       "`write_c_sources` writes three files: `<name>.cc` (the flatbuffer as a 16-byte aligned `const` array, and "
       "the class names), `<name>.h` (input size, int8 scale and zero point of input and output, class count, "
       "`kTensorArenaSize`: the measured arena plus 10 %) and `<name>_op_resolver.h` (a "
       "`tflite::MicroMutableOpResolver` that registers exactly the model's ops). Add them to your build next to "
       "TensorFlow Lite Micro and follow `tflite/app/main.cc`.\n\n"
       "The array is the model without what TFLM never needs: tensor names, signature definitions, the TFLite "
       "Support metadata (the header carries the labels and the quantization instead) and the zero point repeated for "
       "every channel of per-channel weights, which TFLM reads from one value (`strip_for_micro`). The outputs "
       "stay bit-identical, and a small model loses a quarter to nearly half of its flash. `attendnext micro` does "
       "the same (`--no-strip` keeps everything)."),
    code('''
        c_dir = os.path.join(OUT_DIR, "tflite")
        os.makedirs(c_dir, exist_ok=True)
        shipped = strip_for_micro(blob)
        print(f"model array: {len(shipped):,} bytes ({len(blob):,} in the .tflite)")
        paths = write_c_sources(shipped, c_dir, "attendnext_model", metadata=exported.metadata,
                                arena_bytes=MicroRunner(shipped).arena_bytes)
        for kind in ("header", "op_resolver"):
            print(f"// ===== {paths[kind]}\\n" + open(paths[kind]).read())
        source = open(paths["source"]).read().splitlines()
        print(f"// ===== {paths['source']} (first lines of {len(source)})\\n" + "\\n".join(source[:8]) + "\\n  ...")
        '''),
]


NOTEBOOKS_CELLS = {
    "01_quickstart.ipynb": (QUICKSTART, False),
    "02_train_on_your_data.ipynb": (TRAIN, True),
    "03_qat_to_int8_tflite.ipynb": (QAT, True),
    "04_tflite_micro.ipynb": (MICRO, False),
}


def build(name) -> nbformat.NotebookNode:
    cells, gpu = NOTEBOOKS_CELLS[name]
    stem = name.split("_")[0]
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "colab": {"name": name, "provenance": [], **({"gpuType": "T4"} if gpu else {})},
        **({"accelerator": "GPU"} if gpu else {}),
    }
    for index, (kind, text) in enumerate(cells):
        if kind == "code":
            try:
                ast.parse(text)
            except SyntaxError as error:
                raise SyntaxError(f"{name}, cell {index + 1}: {error}") from error
            cell = nbformat.v4.new_code_cell(text)
        else:
            cell = nbformat.v4.new_markdown_cell(text)
        cell.id = f"nb{stem}-cell{index + 1:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(name) -> str:
    return nbformat.writes(build(name)) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook differs from the generated one")
    args = parser.parse_args(argv)
    stale = []
    for name in NOTEBOOKS_CELLS:
        path = NOTEBOOKS / name
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO)}")
    if stale:
        print(f"Out of date (run python tools/make_notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
