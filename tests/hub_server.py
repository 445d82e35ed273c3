"""A Hub-compatible HTTP server for tests: standard library only, loopback only, ephemeral port, in memory.

It speaks the part of the Hugging Face Hub API that `huggingface_hub` (and through it transformers and peft) use to
create a repo, commit files, list and download them: enough to test push → download → identical logits end to end
with the real client. Every request body is read, even when it is not needed (the client reuses connections).

    with LocalHub() as hub:          # hub.url → "http://127.0.0.1:PORT"
        ...                          # HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET=1 in the client process
        hub.repos["org/name"].commits
"""

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse


LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")  # what the Hub's default .gitattributes sends to LFS


def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    message: str
    files: dict  # path → bytes, the whole tree at this commit


@dataclass
class Repo:
    repo_id: str
    private: bool = False
    commits: list = field(default_factory=list)
    refs: dict = field(default_factory=dict)  # "main", "refs/pr/1" → commit index

    def commit(self, revision: str):
        revision = unquote(revision)
        if revision in self.refs:
            return self.commits[self.refs[revision]]
        return next((c for c in self.commits if c.oid == revision), None)


class LocalHub:
    """The server: `start()`/`stop()` or a context manager. Failure switches, each changing nothing on the server:
    `fail_commits = True` makes every commit fail with a 500 after its body was read; `fail_lfs_uploads = True` makes
    every LFS upload fail with a 403 (a refusal, which the client does not retry)."""

    def __init__(self, user: str = "tester", orgs=("synib-org",)):
        self.user, self.orgs = user, tuple(orgs)
        self.repos: dict[str, Repo] = {}
        self.fail_commits = False
        self.fail_lfs_uploads = False
        self.validated_cards = 0
        self.lfs: dict[str, bytes] = {}  # sha256 → content, uploaded through the LFS batch API
        self.authorizations: set = set()  # the Authorization headers clients sent
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                hub._dispatch(self, "GET")

            def do_HEAD(self):
                hub._dispatch(self, "HEAD")

            def do_POST(self):
                hub._dispatch(self, "POST")

            def do_PUT(self):
                hub._dispatch(self, "PUT")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- state ----------------------------------------------------------------------------------------------------

    def create(self, repo_id: str, private: bool = False) -> Repo:
        repo = Repo(repo_id, private)
        initial = Commit(self._new_oid(repo_id), "initial commit", {".gitattributes": b"*.safetensors filter=lfs\n"})
        repo.commits.append(initial)
        repo.refs["main"] = 0
        self.repos[repo_id] = repo
        return repo

    @staticmethod
    def _new_oid(seed: str) -> str:
        return hashlib.sha1(f"{seed}{time.time_ns()}".encode()).hexdigest()

    # ---- HTTP -------------------------------------------------------------------------------------------------------

    def _dispatch(self, request, method):
        if request.headers.get("Authorization"):
            self.authorizations.add(request.headers["Authorization"])
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        parsed = urlparse(request.path)
        path, query = parsed.path, parse_qs(parsed.query)
        routes = [
            ("GET", r"/api/whoami-v2", self._whoami),
            ("POST", r"/api/repos/create", self._create_repo),
            ("POST", r"/api/validate-yaml", self._validate_yaml),
            ("POST", r"/api/(?:model|dataset)s/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)", self._preupload),
            ("POST", r"/api/(?:model|dataset)s/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)", self._commit),
            ("POST", r"/api/(?:model|dataset)s/(?P<repo>[^/]+/[^/]+)/paths-info/(?P<rev>[^/]+)", self._paths_info),
            ("GET", r"/api/(?:model|dataset)s/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", self._tree),
            ("GET", r"/api/(?:model|dataset)s/(?P<repo>[^/]+/[^/]+)/refs", self._refs),
            ("GET", r"/api/(?:model|dataset)s/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?", self._info),
            ("GET|HEAD", r"/(?:datasets/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)", self._resolve),
            ("POST", r"/(?:datasets/)?(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch", self._lfs_batch),
            ("PUT", r"/lfs-upload/(?P<oid>[0-9a-f]{64})", self._lfs_upload),
        ]
        for methods, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if method in methods.split("|") and match:
                with self.lock:
                    return handler(request, body, query, **{k: v for k, v in match.groupdict().items()})
        return self._error(request, 404, "EntryNotFound", f"no route for {method} {path}")

    def _send(self, request, status, payload: bytes, headers=None, content_type="application/json"):
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)

    def _json(self, request, data, status=200, headers=None):
        self._send(request, status, json.dumps(data).encode(), headers)

    def _error(self, request, status, code, message):
        self._json(request, {"error": message}, status, {"X-Error-Code": code, "X-Error-Message": message})

    def _repo(self, request, repo_id):
        repo = self.repos.get(unquote(repo_id))
        if repo is None:
            self._error(request, 404, "RepoNotFound", f"Repository {repo_id} not found")
        return repo

    def _revision(self, request, repo, revision):
        commit = repo.commit(revision or "main")
        if commit is None:
            self._error(request, 404, "RevisionNotFound", f"Revision {revision} not found")
        return commit

    # ---- endpoints ----------------------------------------------------------------------------------------------

    def _whoami(self, request, body, query):
        orgs = [{"name": org, "type": "org"} for org in self.orgs]
        self._json(request, {"name": self.user, "type": "user", "orgs": orgs,
                             "auth": {"type": "access_token", "accessToken": {"role": "write"}}})

    def _validate_yaml(self, request, body, query):
        """What the Hub checks of a card's metadata that matters here: YAML that parses, a well-formed model-index."""
        import yaml

        errors = []
        content = json.loads(body).get("content", "")
        front_matter = content.split("---")[1] if content.startswith("---") else ""
        try:
            metadata = yaml.safe_load(front_matter) or {}
        except yaml.YAMLError as error:
            return self._json(request, {"error": f"invalid YAML: {error}"}, 400)
        for entry in metadata.get("model-index", []):
            if not entry.get("name"):
                errors.append("model-index entry without a name")
            for result in entry.get("results", []):
                if "type" not in result.get("task", {}) or "type" not in result.get("dataset", {}):
                    errors.append("model-index result without task.type or dataset.type")
                for metric in result.get("metrics", []):
                    if "type" not in metric or not isinstance(metric.get("value"), (int, float)):
                        errors.append(f"model-index metric without a type or a numeric value: {metric}")
        if errors:
            return self._json(request, {"error": "; ".join(errors)}, 400)
        self.validated_cards += 1
        self._json(request, {"errors": [], "warnings": []})

    def _create_repo(self, request, body, query):
        data = json.loads(body or b"{}")
        repo_id = f"{data.get('organization') or self.user}/{data['name']}"
        if repo_id in self.repos:
            return self._json(request, {"error": "You already created this model repo", "url": f"{self.url}/{repo_id}"},
                              409)
        self.create(repo_id, bool(data.get("private")) or data.get("visibility") == "private")
        self._json(request, {"url": f"{self.url}/{repo_id}", "name": repo_id})

    def _info(self, request, body, query, repo, rev=None):
        repo = self._repo(request, repo)
        if repo is None:
            return
        commit = self._revision(request, repo, rev)
        if commit is None:
            return
        namespace = repo.repo_id.split("/")[0]
        self._json(request, {
            "_id": repo.repo_id, "id": repo.repo_id, "modelId": repo.repo_id, "author": namespace,
            "sha": commit.oid, "private": repo.private, "disabled": False, "gated": False, "downloads": 0,
            "likes": 0, "tags": [], "lastModified": "2026-11-28T00:00:00.000Z", "createdAt": "2026-11-28T00:00:00.000Z",
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        })

    def _preupload(self, request, body, query, repo, rev):
        repo = self._repo(request, repo)
        if repo is None:
            return
        existing = repo.commit(rev) or repo.commit("main")
        files = []
        for entry in json.loads(body)["files"]:
            content = existing.files.get(entry["path"]) if existing else None
            mode = "lfs" if entry["path"].endswith(LFS_SUFFIXES) and entry["size"] > 0 else "regular"
            files.append({"path": entry["path"], "uploadMode": mode, "shouldIgnore": False,
                          "oid": git_blob_oid(content) if content is not None else None})
        self._json(request, {"files": files, "commitOid": existing.oid if existing else None})

    def _commit(self, request, body, query, repo, rev):
        repo = self._repo(request, repo)
        if repo is None:
            return
        if self.fail_commits:
            return self._error(request, 500, "InternalError", "the storage backend failed while committing")
        base = self._revision(request, repo, rev)
        if base is None:
            return
        files, message = dict(base.files), ""
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value.get("summary", "")
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                if value["oid"] not in self.lfs:
                    return self._error(request, 400, "BadRequest", f"LFS object {value['oid']} was never uploaded")
                files[value["path"]] = self.lfs[value["oid"]]
            elif key in ("deletedFile", "deletedFolder"):
                prefix = value["path"].rstrip("/")
                files = {p: c for p, c in files.items() if p != prefix and not p.startswith(prefix + "/")}
            else:
                return self._error(request, 400, "BadRequest", f"unsupported commit operation {key!r}")
        commit = Commit(self._new_oid(repo.repo_id), message, files)
        repo.commits.append(commit)
        result = {"commitUrl": f"{self.url}/{repo.repo_id}/commit/{commit.oid}", "commitOid": commit.oid,
                  "success": True}
        if query.get("create_pr") == ["1"]:
            number = sum(ref.startswith("refs/pr/") for ref in repo.refs) + 1
            repo.refs[f"refs/pr/{number}"] = len(repo.commits) - 1
            result["pullRequestUrl"] = f"{self.url}/{repo.repo_id}/discussions/{number}"
        else:
            repo.refs[unquote(rev)] = len(repo.commits) - 1
        self._json(request, result)

    def _lfs_batch(self, request, body, query, repo):
        if self._repo(request, repo) is None:
            return
        objects = []
        for entry in json.loads(body)["objects"]:
            obj = {"oid": entry["oid"], "size": entry["size"], "authenticated": True}
            if entry["oid"] not in self.lfs:  # already stored objects get no action: the client skips them
                obj["actions"] = {"upload": {"href": f"{self.url}/lfs-upload/{entry['oid']}"}}
            objects.append(obj)
        self._json(request, {"transfer": "basic", "objects": objects})

    def _lfs_upload(self, request, body, query, oid):
        if self.fail_lfs_uploads:
            return self._error(request, 403, "Forbidden", "the LFS storage refused the object")
        if hashlib.sha256(body).hexdigest() != oid:
            return self._error(request, 400, "BadRequest", "LFS content does not match its sha256")
        self.lfs[oid] = body
        self._send(request, 200, b"")

    @staticmethod
    def _entry(path, content):
        return {"type": "file", "path": path, "size": len(content), "oid": git_blob_oid(content)}

    def _tree(self, request, body, query, repo, rev, path=None):
        repo = self._repo(request, repo)
        commit = repo and self._revision(request, repo, rev)
        if commit is None:
            return
        prefix = (unquote(path).strip("/") + "/") if path else ""
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        entries, folders = [], set()
        for name, content in sorted(commit.files.items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix):]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            entries.append(self._entry(name, content))
        if prefix and not entries and not folders:
            return self._error(request, 404, "EntryNotFound", f"{path} does not exist on {rev}")
        entries += [{"type": "directory", "path": folder, "oid": git_blob_oid(folder.encode())}
                    for folder in sorted(folders)]
        self._json(request, entries)

    def _paths_info(self, request, body, query, repo, rev):
        repo = self._repo(request, repo)
        commit = repo and self._revision(request, repo, rev)
        if commit is None:
            return
        if request.headers.get("Content-Type", "").startswith("application/json"):
            paths = json.loads(body).get("paths", [])
        else:
            paths = parse_qs(body.decode()).get("paths", [])
        self._json(request, [self._entry(p, commit.files[p]) for p in paths if p in commit.files])

    def _refs(self, request, body, query, repo):
        repo = self._repo(request, repo)
        if repo is None:
            return
        branches = [{"name": name, "ref": f"refs/heads/{name}", "targetCommit": repo.commits[index].oid}
                    for name, index in repo.refs.items() if not name.startswith("refs/")]
        pulls = [{"name": name, "ref": name, "targetCommit": repo.commits[index].oid}
                 for name, index in repo.refs.items() if name.startswith("refs/pr/")]
        self._json(request, {"branches": branches, "converts": [], "tags": [], "pullRequests": pulls})

    def _resolve(self, request, body, query, repo, rev, path):
        repo = self._repo(request, repo)
        commit = repo and self._revision(request, repo, rev)
        if commit is None:
            return
        path = unquote(path)
        if path not in commit.files:
            return self._error(request, 404, "EntryNotFound", f"{path} does not exist on {rev}")
        content = commit.files[path]
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{git_blob_oid(content)}"'}
        self._send(request, 200, content, headers, content_type="application/octet-stream")
