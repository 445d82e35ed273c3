"""No file the trainer writes or pushes holds the Hub token: train with checkpoints and push to the local Hub with a
secret `hub_token` in the config, then scan every byte of every file on disk and on the server."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_server import LocalHub


HERE = Path(__file__).parent
SECRET = "hf_secretTokenThatMustNeverBeWritten0123"


@pytest.mark.parametrize("strategy", ["end", "checkpoint"])
def test_no_token_in_any_file_written_or_pushed(tmp_path, strategy):
    home, out = tmp_path / "hf-home", tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    repo_id = f"synib-org/token-{strategy}"
    with LocalHub() as hub:
        env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1")
        result = subprocess.run([sys.executable, str(HERE / "hub_token_client.py"), str(out), repo_id, strategy, SECRET],
                                env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"Bearer {SECRET}" in hub.authorizations  # the token was used, to authenticate
        pushed = {f"{repo_id}@{commit.oid}/{name}": data
                  for commit in hub.repos[repo_id].commits for name, data in commit.files.items()}
        pushed.update({f"lfs/{sha}": data for sha, data in hub.lfs.items()})
    names = {name.rsplit("/", 1)[-1] for name in pushed}
    assert "training_args.bin" in names  # the Trainer pushed its arguments: the file that used to carry the token
    if strategy == "checkpoint":
        assert any("last-checkpoint/" in name for name in pushed)
    written = {str(path): path.read_bytes() for root in (out, home) for path in root.rglob("*") if path.is_file()}
    assert any(name.endswith("training_args.bin") for name in written)
    leaks = [name for name, data in {**written, **pushed}.items() if SECRET.encode() in data]
    assert not leaks, leaks
