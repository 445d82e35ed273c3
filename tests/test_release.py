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
        loaded = subprocess.run([sys.executable, "-c", LOAD, str(tmp_path / "release")],
                                env=client_env(hub, tmp_path / "cache-2"), capture_output=True, text=True, timeout=600)
        assert loaded.returncode == 0, loaded.stderr[-3000:]
        assert "tiny-clip-deberta-synib FusionForSequenceClassification" in loaded.stdout
        assert "minilm-easyvqa-synib FusionForSequenceClassification" in loaded.stdout
        card = hub.repos["synib-org/minilm-easyvqa-synib"].commit("main").files["README.md"].decode()
        assert "each question's prior taken out" in card and "sentence-transformers/all-MiniLM-L6-v2" in card
