"""Install the FARTrack re-implementation: package ``lib`` and its configs (``tracking/`` runs from a checkout).

The pinned torch / torchvision / timm triple imports on CPU-only machines and on CUDA machines alike:
the PyPI torch wheel carries its CUDA runtime and falls back to the CPU when no GPU is present.
"""
from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

#: Generated local path files (tracking/create_default_local_file.py, git-ignored): one user's paths, never shipped.
LOCAL_PATH_FILES = {("lib.test.evaluation", "local"), ("lib.train.admin", "local")}


#: vot-toolkit 0.8.0-0.9.0 cannot run the supervised and multistart (VOT-ST EAO) experiments with a TraX tracker
#: (they pass an ObjectStatus where a region is expected); 0.7.4 runs all three kinds. It declares opencv-python,
#: the GUI build of cv2 (needs libGL), which would overwrite opencv-python-headless's cv2 in the same environment;
#: the toolkit runs on the headless build, so the dev setup (Makefile) installs it with --no-deps on top of the
#: dependencies below, which are its declared ones minus opencv-python. attributee 0.1.10 (the latest) fails to
#: import on Python >= 3.11, hence 0.1.9.
VOT_TOOLKIT = "vot-toolkit==0.7.4"
VOT_TOOLKIT_DEPENDENCIES = [
    "vot-trax==4.0.2", "attributee==0.1.9", "pylatex>=1.3", "jsonschema>=3.2", "Pillow>=7.0", "numba>=0.47",
    "requests>=2.22", "colorama>=0.4.3", "packaging>=20", "dominate>=2.5", "cachetools>=4.1", "bidict>=0.19",
    "phx-class-registry>=5.0", "lazy-object-proxy>=1.9",
]


class BuildPy(build_py):
    """``build_py`` that leaves the generated local path files out of wheels and installs."""

    def find_package_modules(self, package, package_dir):
        return [module for module in super().find_package_modules(package, package_dir)
                if module[:2] not in LOCAL_PATH_FILES]


setup(
    name="fartrack",
    version="0.1.0",
    description="Faithful, fast re-implementation of FARTrack (ICLR 2026)",
    python_requires=">=3.10",
    # Every folder of lib/ with Python code is a regular package (has an __init__.py), so find_packages sees it.
    # The experiment configs ship as package data of ``lib.experiments``, which is the repository's experiments/
    # folder (package_dir): installed they live in <site-packages>/lib/experiments/<script>/*.yaml; a checkout or an
    # editable install keeps reading <repo>/experiments/ (lib.utils.local_paths.find_experiments_dir).
    packages=[*find_packages(include=["lib", "lib.*"]), "lib.experiments"],
    package_dir={"lib.experiments": "experiments"},
    package_data={"lib.test.evaluation": ["lists/*.json"], "lib.train": ["data_specs/*.txt"],
                  "lib.experiments": ["*/*.yaml"]},
    cmdclass={"build_py": BuildPy},
    install_requires=[
        "torch==2.14.1",
        "torchvision==0.29.2",
        "timm==1.0.31",
        "numpy>=1.24",
        "opencv-python-headless>=4.8",
        "pyyaml>=6.0",
        "lmdb>=1.4",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "tensorboard>=2.14",  # behind torch.utils.tensorboard.SummaryWriter (lib/train/trainer.py)
    ],
    extras_require={
        # got10k (test oracle) imports six; the ONNX pins let the ONNX parity tests run in CI.
        "dev": ["pytest>=8", "hypothesis>=6.100", "got10k==0.1.3", "six",
                "onnx==1.23.2", "onnxruntime==1.31.1", "onnxscript==0.7.2",
                "openvino==2026.4.1",  # tests/test_openvino.py, the profiler's openvino path
                *VOT_TOOLKIT_DEPENDENCIES,  # tests/test_vot.py; the Makefile adds vot-toolkit itself (see below)
                "setuptools>=70.1"],  # tests/test_install.py builds the wheel without build isolation
        # ONNX export (dynamo exporter: onnx + onnxscript) and the ONNX Runtime tracker (onnxruntime only).
        "onnx": ["onnx==1.23.2", "onnxruntime==1.31.1", "onnxscript==0.7.2"],
        # The OpenVINO tracker (lib.export.openvino_runtime) on the ONNX export; exporting still needs the onnx extra.
        "openvino": ["openvino==2026.4.1"],
        # VOT toolkit integration (lib/vot, tracking/vot_tracker.py, docs/vot.md); see VOT_TOOLKIT below.
        "vot": [VOT_TOOLKIT, *VOT_TOOLKIT_DEPENDENCIES, "opencv-python>=4.0"],
        "jpeg": ["jpeg4py>=0.1.4"],
        "wandb": ["wandb>=0.16"],
    },
)
