"""Train → push (full and LoRA) → download into a fresh cache → identical logits, against the local Hub server."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from hub_server import LocalHub


HERE = Path(__file__).parent
TOKEN = "hf_local_test_token_123"


def client_env(hub, home):
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}  # HF_HUB_OFFLINE blocks even localhost
    env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_TOKEN=TOKEN, HF_HOME=str(home),
               HF_HUB_DISABLE_TELEMETRY="1")
    return env


def run(args, hub, home, check=True):
    result = subprocess.run([sys.executable, *map(str, args)], env=client_env(hub, home), capture_output=True,
                            text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def hub():
    with LocalHub() as server:
        yield server


@pytest.fixture(scope="module")
def round_trip(hub, tmp_path_factory):
    out = tmp_path_factory.mktemp("hub")
    run([HERE / "hub_client.py", "push", out], hub, tmp_path_factory.mktemp("push-cache"))
    run([HERE / "hub_client.py", "download", out], hub, tmp_path_factory.mktemp("fresh-cache"))
    return json.loads((out / "push.json").read_text()), json.loads((out / "download.json").read_text()), out


def test_downloaded_models_give_identical_logits(round_trip):
    pushed, downloaded, _ = round_trip
    assert downloaded["full_class"] == "FusionForSequenceClassification"
    assert downloaded["processor_class"] == "FusionProcessor"
    assert downloaded["full"] == pushed["full"]
    assert downloaded["lora_class"] == "FusionForSequenceClassification"  # base + adapters, one call
    assert downloaded["lora"] == pushed["lora"]


def test_each_push_is_exactly_one_commit(round_trip, hub):
    for repo_id in ("synib-org/fusion-full", "synib-org/fusion-base", "synib-org/fusion-lora",
                    "synib-org/fusion-lora-trainer"):
        assert [c.message for c in hub.repos[repo_id].commits][0] == "initial commit"
        assert len(hub.repos[repo_id].commits) == 2, repo_id
    adapters = hub.repos["synib-org/fusion-lora-trainer"].commit("main").files
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= set(adapters)
    # weights travelled through the LFS batch API, as on the Hub; small files inline
    weights = hub.repos["synib-org/fusion-full"].commit("main").files["model.safetensors"]
    assert weights in hub.lfs.values() and len(hub.lfs) >= 3


def test_card_parses_validates_and_reports_the_evaluation(round_trip, hub):
    pushed, _, out = round_trip
    files = hub.repos["synib-org/fusion-full"].commit("main").files
    content = files["README.md"].decode()
    card = ModelCard(content)
    _, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    reported = {r.metric_name: r.metric_value for r in results}
    assert reported["Accuracy"] == round(pushed["metrics"]["eval_accuracy"], 6)
    masked = "Accuracy with text masked (random mask, 50% of its features)"  # SynIBConfig's default mask
    assert reported[masked] == round(pushed["metrics"]["eval_synib/masked_accuracy_text"], 6)
    assert 'from_pretrained("synib-org/fusion-full")' in content
    assert hub.validated_cards >= 2  # every push with a card went through the server's metadata check
    for name, data in files.items():
        if name.endswith((".md", ".json")):
            text = data.decode()
            assert TOKEN not in text and str(out) not in text and "/tmp/" not in text, name


def push_script(args, hub, home, check=True):
    return run(["-m", "synib_hf", "push", *args], hub, home, check)


@pytest.fixture
def checkpoint(tmp_path):
    sys.path.insert(0, str(HERE))
    from tiny_models import mlp_fusion

    path = tmp_path / "checkpoint"
    mlp_fusion().save_pretrained(path)
    return path


def test_failure_midway_leaves_no_half_written_revision(hub, checkpoint, tmp_path):
    from tiny_models import mlp_fusion

    push_script([checkpoint, "--repo-id", "synib-org/flaky"], hub, tmp_path / "cache")
    mlp_fusion(seed=1).save_pretrained(checkpoint)  # new weights: the next push has something to commit
    before = [c.oid for c in hub.repos["synib-org/flaky"].commits], dict(hub.repos["synib-org/flaky"].refs)
    hub.fail_commits = True
    try:
        result = push_script([checkpoint, "--repo-id", "synib-org/flaky", "--commit-message", "second"], hub,
                             tmp_path / "cache", check=False)
    finally:
        hub.fail_commits = False
    assert result.returncode == 1
    assert "push to synib-org/flaky failed" in result.stderr and "Nothing was committed" in result.stderr
    assert ([c.oid for c in hub.repos["synib-org/flaky"].commits], hub.repos["synib-org/flaky"].refs) == before


def test_private_pull_request_and_dry_run(hub, checkpoint, tmp_path):
    push_script([checkpoint, "--repo-id", "synib-org/pr-target", "--private"], hub, tmp_path / "cache")
    repo = hub.repos["synib-org/pr-target"]
    main = repo.refs["main"]
    assert repo.private
    from tiny_models import mlp_fusion

    mlp_fusion(seed=2).save_pretrained(checkpoint)
    push_script([checkpoint, "--repo-id", "synib-org/pr-target", "--create-pr", "--commit-message", "proposal"], hub,
                tmp_path / "cache")
    assert repo.refs["main"] == main and "refs/pr/1" in repo.refs
    result = push_script([checkpoint, "--repo-id", "synib-org/never", "--dry-run"], hub, tmp_path / "cache")
    assert "would push to synib-org/never in one commit: config.json, model.safetensors" in result.stdout
    assert "synib-org/never" not in hub.repos


VLM_ROUND_TRIP = """
import sys, torch
sys.path.insert(0, {tests!r})
import synib_hf
from transformers import AutoModelForSequenceClassification
from synib_hf import VLMClassificationConfig, VLMForSequenceClassification
from tiny_vlms import random_batch, tiny_vlm_config
torch.manual_seed(0)
model = VLMForSequenceClassification(VLMClassificationConfig(vlm_config=tiny_vlm_config("qwen2_vl"), logvar_head=True))
model.push_to_hub("synib-org/vlm-classifier", commit_message="VLM classifier")
loaded = AutoModelForSequenceClassification.from_pretrained("synib-org/vlm-classifier")
batch = {{k: v for k, v in random_batch("qwen2_vl", 2).items() if k != "labels"}}
with torch.no_grad():
    assert type(loaded) is VLMForSequenceClassification
    assert torch.equal(loaded.eval()(**batch).logits, model.eval()(**batch).logits)
print("identical logits")
"""


def test_vlm_classifier_pushes_and_loads_by_repo_id(hub, tmp_path):
    result = run(["-c", VLM_ROUND_TRIP.format(tests=str(HERE))], hub, tmp_path / "cache")
    assert "identical logits" in result.stdout
    assert [c.message for c in hub.repos["synib-org/vlm-classifier"].commits][-1] == "VLM classifier"


def test_push_leaves_every_training_state_file_out_and_needs_real_weights(tmp_path):
    import json

    from synib_hf.cli.push import plan_upload

    folder = tmp_path / "checkpoint-4"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    state = ["training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state.pth", "rng_state_0.pth",
             "rng_state_1.pth", "synib_state.pt", "synib_state_1.pt", "trainer_state.json"]
    for name in state:
        (folder / name).write_bytes(b"state")
    with pytest.raises(ValueError, match="holds no model: expected config.json .* and weights"):
        plan_upload(str(folder), "org/name")  # training_args.bin is not weights
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "checkpoint-2").mkdir()
    (folder / "checkpoint-2" / "model.safetensors").write_bytes(b"an intermediate checkpoint")
    assert sorted(plan_upload(str(folder), "org/name")) == ["config.json", "model.safetensors"]


# ---- no staging copy: a push stopped at any point leaves nothing in the temporary folder ------------------------------


class Interrupted(BaseException):
    """What a signal handler raises (KeyboardInterrupt for SIGINT; SystemExit for a SIGTERM handler)."""


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit, Interrupted])
def test_a_push_interrupted_mid_upload_leaves_nothing_in_the_temporary_folder(tmp_path, monkeypatch, interruption):
    """The upload reads the files from the checkpoint folder and rewrites only the card and the adapter config, in
    memory: at the moment the commit runs there is no copy anywhere, so neither an exception (Ctrl-C, a SIGTERM
    handler) nor SIGKILL at that moment can leave one."""
    import tempfile

    from huggingface_hub import HfApi

    from synib_hf.cli import push

    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    sys.path.insert(0, str(HERE))
    from tiny_models import tiny_fusion

    checkpoint = tmp_path / "lora"
    from peft import get_peft_model

    from synib_hf import lora_config_for

    base = tiny_fusion()
    get_peft_model(base, lora_config_for(base, r=2)).save_pretrained(checkpoint)
    (checkpoint / "optimizer.pt").write_bytes(b"state")
    seen = {}

    def create_commit(self, repo_id, operations, commit_message, create_pr=False):
        seen["temporary"] = sorted(p.name for p in temporary.iterdir())
        seen["sources"] = {op.path_in_repo: op.path_or_fileobj for op in operations}
        raise interruption()

    monkeypatch.setattr(HfApi, "create_repo", lambda self, *a, **k: None)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    with pytest.raises(interruption):
        push.main([str(checkpoint), "--repo-id", "synib-org/lora", "--base-model", "synib-org/base"])
    assert seen["temporary"] == [] and list(temporary.iterdir()) == []
    sources = seen["sources"]
    assert sources["adapter_model.safetensors"] == str(checkpoint / "adapter_model.safetensors")  # read in place
    assert json.loads(sources["adapter_config.json"])["base_model_name_or_path"] == "synib-org/base"  # bytes
    assert json.loads((checkpoint / "adapter_config.json").read_text())["base_model_name_or_path"] is None
    assert "optimizer.pt" not in sources


def test_a_push_killed_mid_upload_leaves_nothing_in_the_temporary_folder(hub, tmp_path):
    """SIGKILL as soon as the repo exists (the upload is next, or under way): the temporary folder the push ran with
    stays empty, so no later run has anything to clean up."""
    import signal
    import time

    temporary, checkpoint = tmp_path / "tmp", tmp_path / "checkpoint"
    temporary.mkdir()
    sys.path.insert(0, str(HERE))
    from tiny_models import mlp_fusion

    mlp_fusion().save_pretrained(checkpoint)
    env = {**client_env(hub, tmp_path / "cache"), "TMPDIR": str(temporary)}
    process = subprocess.Popen([sys.executable, "-m", "synib_hf", "push", str(checkpoint), "--repo-id",
                                "synib-org/killed", "--endpoint", hub.url], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while "synib-org/killed" not in hub.repos and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # create_repo has run: the upload is next
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert list(temporary.iterdir()) == []
