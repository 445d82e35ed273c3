"""`synib-hf release --endpoint <local server>` releases the reference models, loadable by repo id."""

import subprocess
import sys

from hub_server import LocalHub
from test_hub import client_env


LOAD = r"""
import sys, torch, synib_hf
from transformers import AutoModelForSequenceClassification
for name in ("xor-synib", "irony-digits-synib", "tiny-clip-deberta-synib", "minilm-easyvqa-synib"):
    hub_model = AutoModelForSequenceClassification.from_pretrained(f"synib-org/{name}").eval()
    local = AutoModelForSequenceClassification.from_pretrained(f"{sys.argv[1]}/{name}").eval()
    assert all(torch.equal(a, b) for a, b in zip(hub_model.state_dict().values(), local.state_dict().values())), name
    print(name, type(hub_model).__name__)
"""


def test_release_pushes_every_reference_model_loadable_by_repo_id(tmp_path):
    with LocalHub() as hub:
        release = subprocess.run(
            [sys.executable, "-m", "synib_hf", "release", "--quick", "--organization", "synib-org",
             "--endpoint", hub.url, "--output_dir", str(tmp_path / "release")],
            env=client_env(hub, tmp_path / "cache-1"), capture_output=True, text=True, timeout=900)
        assert release.returncode == 0, release.stderr[-3000:]
        assert {"synib-org/xor-synib", "synib-org/irony-digits-synib", "synib-org/tiny-clip-deberta-synib",
                "synib-org/minilm-easyvqa-synib"} <= set(hub.repos)
        assert all(len(hub.repos[r].commits) == 2 for r in hub.repos)  # one commit per release
        card = hub.repos["synib-org/xor-synib"].commit("main").files["README.md"].decode()
        assert "Synergy-subset accuracy" in card and 'from_pretrained("synib-org/xor-synib")' in card
        assert "| Synergy-subset chance reference (1/C: uniform guessing over the C = 2 classes) | 0.5000 |" in card
        assert "Accuracy on the synergy slice, the examples generated as synergistic (ground-truth synergy)" in card
        loaded = subprocess.run([sys.executable, "-c", LOAD, str(tmp_path / "release")],
                                env=client_env(hub, tmp_path / "cache-2"), capture_output=True, text=True, timeout=600)
        assert loaded.returncode == 0, loaded.stderr[-3000:]
        assert "tiny-clip-deberta-synib FusionForSequenceClassification" in loaded.stdout
        assert "minilm-easyvqa-synib FusionForSequenceClassification" in loaded.stdout
        card = hub.repos["synib-org/minilm-easyvqa-synib"].commit("main").files["README.md"].decode()
        assert "each question's prior taken out" in card and "sentence-transformers/all-MiniLM-L6-v2" in card


def test_the_vector_releases_evaluate_the_ground_truth_slice_and_the_chance_reference(tmp_path):
    """The quick xor and irony builds: the evaluation behind each card holds the subset's chance (1/C) and the accuracy
    on the data's ground-truth synergy slice, recomputed here from the saved model on exactly those test rows."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from synib_hf import predicted_classes
    from synib_hf.cli.release import build
    from synib_hf.data.irony import irony_splits
    from synib_hf.data.xor import GaussianXOR
    from synib_hf.model_card import GROUND_TRUTH_NAMES

    cases = {
        "xor-synib": (GaussianXOR(mixture=(0.0, 0.0, 0.8, 0.2), seed=0).splits()["test"], "synergy_source", 2),
        "irony-digits-synib": (irony_splits("digits", rate=0.3, seed=0)["test"], "irony_class", 11),
    }
    for name, (test, slice_name, classes) in cases.items():
        folder, metrics = build(name, str(tmp_path), quick=True)
        assert metrics["eval_synergy_chance"] == 1 / classes, name
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        with torch.no_grad():
            logits = model(x1=torch.from_numpy(test["x1"]), x2=torch.from_numpy(test["x2"])).logits.numpy()
        correct = predicted_classes(logits) == test["labels"]
        mask = test["source"] == 3 if slice_name == "synergy_source" else test["is_irony"]
        assert 0 < mask.sum() < len(mask)
        assert metrics[f"eval_ground_truth_{slice_name}_accuracy"] == float(correct[mask].mean()), name
        card = (tmp_path / name / "README.md").read_text()
        described = GROUND_TRUTH_NAMES[slice_name]
        assert f"| Examples in {described} | {int(mask.sum())} |" in card, name
        assert f"| Accuracy on {described} | {correct[mask].mean():.4f} |" in card, name
