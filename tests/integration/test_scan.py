"""``akener scan``: keys in files and in git history, checked by digest, never printed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import TEST_SECRET
from tests.servers import akener_cli, akener_env


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


def _key(env: dict[str, str], cwd: Path, name: str) -> tuple[str, str]:
    made = akener_cli(env, cwd, "keys", "create", "--name", name, "--json")
    assert made.returncode == 0, made.stderr
    body = json.loads(made.stdout)
    return body["id"], body["key"]


def test_scan_finds_a_live_key_in_an_old_commit_and_deactivates_it(
    database_url: str, tmp_path: Path
) -> None:
    env = akener_env(database_url, TEST_SECRET)
    _, live = _key(env, tmp_path, "Deploy bot")
    dead_id, dead = _key(env, tmp_path, "Old bot")
    assert akener_cli(env, tmp_path, "keys", "deactivate", dead_id).returncode == 0
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "config.py").write_text(f"# settings\n\nTOKEN = '{live}'\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "oops")
    (repo / "config.py").write_text("TOKEN = os.environ['TOKEN']\n")
    (repo / "notes.txt").write_text(f"old: {dead}\nnot a key: akener_{'0' * 65}\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "fix")
    files = akener_cli(env, tmp_path, "scan", str(repo))
    assert files.returncode == 0, files.stderr  # the only key in the tree is inactive
    assert "notes.txt:1: Old bot INACTIVE" in files.stdout
    assert "config.py" not in files.stdout  # the working tree no longer has it

    history = akener_cli(env, tmp_path, "scan", "--git", str(repo))
    assert history.returncode == 1, history.stderr
    assert ":config.py:3: Deploy bot ACTIVE akener_" in history.stdout
    assert live not in history.stdout + history.stderr
    assert dead not in history.stdout + history.stderr
    assert live[-4:] in history.stdout

    fixed = akener_cli(env, tmp_path, "scan", "--git", "--deactivate", str(repo))
    assert fixed.returncode == 1
    again = akener_cli(env, tmp_path, "scan", "--git", str(repo))
    assert again.returncode == 0, again.stdout
    assert "Deploy bot INACTIVE" in again.stdout
    audit = akener_cli(env, tmp_path, "audit", "export", "--format", "jsonl")
    assert '"key.leaked"' in audit.stdout, audit.stderr


def test_scan_of_a_folder_without_keys_is_quiet_and_succeeds(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("akener_ is the prefix\n\x00binary\n")
    result = akener_cli(akener_env(None, None), tmp_path, "scan", str(tmp_path))
    assert result.returncode == 0
    assert "No akener keys found" in result.stderr
