import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_PRODUCTION_VARIABLES = {"DEBUG", "SECRET_KEY", "LOCATION_MASK_KEY", "ALLOWED_HOSTS"}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in _PRODUCTION_VARIABLES}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def test_production_settings_pass_check_deploy():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="x" * 20 + "-production-secret-" + "y" * 30,
        LOCATION_MASK_KEY="m" * 20 + "-production-mask-key-" + "k" * 30,
        ALLOWED_HOSTS="atlas.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check", DEBUG="0", ALLOWED_HOSTS="atlas.example.org", LOCATION_MASK_KEY="m" * 50)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_a_location_mask_key():
    result = _manage("check", DEBUG="0", ALLOWED_HOSTS="atlas.example.org", SECRET_KEY="s" * 50)
    assert result.returncode != 0
    assert "LOCATION_MASK_KEY" in result.stderr
