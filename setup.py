"""Install the FARTrack re-implementation (package ``lib`` plus the ``tracking`` scripts).

The pinned torch / torchvision / timm triple imports on CPU-only machines and on CUDA machines alike:
the PyPI torch wheel carries its CUDA runtime and falls back to the CPU when no GPU is present.
"""
from setuptools import find_packages, setup

setup(
    name="fartrack",
    version="0.1.0",
    description="Faithful, fast re-implementation of FARTrack (ICLR 2026)",
    python_requires=">=3.10",
    packages=find_packages(include=["lib", "lib.*"]),
    package_data={"lib.test.evaluation": ["lists/*.json"], "lib.train": ["data_specs/*.txt"]},
    install_requires=[
        "torch==2.14.1",
        "torchvision==0.29.2",
        "timm==1.0.31",
        "numpy>=1.24",
        "opencv-python-headless>=4.8",
        "pyyaml>=6.0",
        "easydict>=1.10",
        "pandas>=2.0",
        "lmdb>=1.4",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "tensorboard>=2.14",
    ],
    extras_require={
        # got10k (test oracle) imports six; the ONNX pins let the ONNX parity tests run in CI.
        "dev": ["pytest>=8", "hypothesis>=6.100", "got10k==0.1.3", "six",
                "onnx==1.23.2", "onnxruntime==1.31.1", "onnxscript==0.7.2"],
        # ONNX export (dynamo exporter: onnx + onnxscript) and the ONNX Runtime tracker (onnxruntime only).
        "onnx": ["onnx==1.23.2", "onnxruntime==1.31.1", "onnxscript==0.7.2"],
        "jpeg": ["jpeg4py>=0.1.4"],
        "wandb": ["wandb>=0.16"],
    },
)
