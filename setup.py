import re
from pathlib import Path

from setuptools import setup


HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "synib_hf" / "__init__.py").read_text()).group(1)

# torch is pinned to the CPU wheel this project is developed and tested with; an unpinned or open range makes pip
# resolve a multi-GB CUDA build. Users with GPUs install their torch first: any 2.x that satisfies this pin's range
# for their platform is used as is.
REQUIRED = [
    "torch==2.13.0",
    "transformers>=5.24,<6",
    "accelerate>=1.15",
    "datasets>=5.2",
    "evaluate>=0.4.6",
    "peft>=0.21",
    "huggingface_hub>=2.4",
    "safetensors>=0.8",
    "jinja2>=3.1",
    "pillow>=10",
    "scikit-learn>=1.5",
    "pyyaml>=6",
]

EXTRAS = {
    "test": ["pytest>=8", "matplotlib>=3.8"],
    "dev": ["pytest>=8", "matplotlib>=3.8", "ruff>=0.6"],
}

setup(
    name="synib-hf",
    version=VERSION,
    description="SynIB (Synergistic Information Bottleneck) for Hugging Face transformers: a drop-in Trainer.",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=["synib_hf", "synib_hf.trainers"],
    package_dir={"synib_hf": "synib_hf", "synib_hf.trainers": "trainers"},
    package_data={"synib_hf": ["templates/*.md", "metrics/*/*.py"]},
    include_package_data=True,
    install_requires=REQUIRED,
    extras_require=EXTRAS,
)
