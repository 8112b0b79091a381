from setuptools import find_packages, setup

# What running an exported .tflite needs (attendnext_keras.deploy.predictor.Predictor, `attendnext predict`): no TensorFlow.
# A runtime-only install is `pip install --no-deps .` plus these (README, "Running exported models"); an extras
# group cannot express it, since extras only add to install_requires.
RUNTIME_REQUIRES = ["ai-edge-litert>=2.0,<3", "numpy>=1.26,<3", "pillow>=10"]

setup(
    name="attendnext_keras",
    version="0.1.0",
    description="AttendNeXt (double-condensing attention condensers, anti-aliased downsampling) for Keras, "
                "with quantization-aware training to int8 TFLite for ARM CPUs and microcontrollers.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["attendnext_keras", "attendnext_keras.*"]),
    # The embedded default data set (flowers_mini), so the main job trains offline on a fresh machine; the trained
    # presets (each a folder: config.json, spec.json, model.weights.h5, metadata.json, README.md; < 1 MB each).
    package_data={"attendnext_keras": ["datasets/flowers_mini/*/*/*.jpg", "datasets/flowers_mini/README.md",
                                       "configs/*.yaml", "presets/*/*.json", "presets/*/*.weights.h5",
                                       "presets/*/README.md"]},
    install_requires=[
        "tensorflow>=2.19,<2.22",
        "tf-keras>=2.19,<2.22",  # Keras 2: tensorflow-model-optimization needs it; must match tensorflow's minor
        "keras>=3.10,<4",
        "tensorflow-model-optimization>=0.8.0,<0.9",
        "tensorflow-datasets>=4.9,<5",
        "importlib_resources>=6",  # TFDS 4.9 imports it to prepare code-defined data sets (imagenet2012) but omits it
        "tflite-micro>=0.dev20250101",  # published as nightly builds only
        "tensorboard>=2.19,<2.22",  # the TensorBoard callback's summaries need it
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "pyyaml>=6",
        "optuna>=3.5",  # design exploration (attendnext explore): constrained, multi-objective, resumable studies
        *RUNTIME_REQUIRES,
    ],
    extras_require={
        # nbclient, nbformat, ipykernel: CI executes notebooks/ (tools/run_notebooks.py)
        "dev": ["pytest>=8", "pytest-xdist>=3", "nbclient>=0.9", "nbformat>=5.9", "ipykernel>=6.25",
                "ethos-u-vela>=5.2,<6"],  # tests/test_vela.py compiles for Ethos-U
        # Arm Ethos-U NPUs (attendnext export --target ethos-u55-128): Vela, Arm's compiler (a manylinux wheel)
        "vela": ["ethos-u-vela>=5.2,<6"],
        # Sharing presets (attendnext preset upload): hf:// needs huggingface_hub, kaggle:// kagglehub. keras-hub itself
        # (whose layout presets follow) would add 16 packages, tensorflow-text and tokenizers among them: not required.
        "hub": ["huggingface_hub>=0.20", "kagglehub>=0.3"],
    },
    entry_points={"console_scripts": ["attendnext=attendnext_keras.cli:main"]},
)
