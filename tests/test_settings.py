import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Settings the tests below choose themselves; the caller's values (make exports DEBUG=1) must not leak in.
_CHOSEN = {
    "DEBUG",
    "SECRET_KEY",
    "LOCATION_MASK_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "ATLAS_ENV_FILE",
    "GEOCODER_BAN_ENABLED",  # conftest turns it off for every process the tests start
}


def _run(command: list[str], **env: str) -> subprocess.CompletedProcess:
    """Run in a fresh process with the env vars given; no .env is read unless ATLAS_ENV_FILE names one."""
    environment = {k: v for k, v in os.environ.items() if k not in _CHOSEN}
    environment["ATLAS_ENV_FILE"] = ""
    environment.update(env)
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "manage.py", *args], **env)


def _settings(*names: str, **env: str) -> list[str]:
    """The repr of each named setting, as config/settings.py computes them in a fresh process."""
    code = f"from config import settings; print(*(repr(getattr(settings, n)) for n in {names!r}), sep='\\n')"
    result = _run([sys.executable, "-c", code], **env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


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


def test_settings_read_the_env_file_and_the_environment_wins(tmp_path):
    env_file = tmp_path / "custom.env"
    env_file.write_text("DEBUG=1\nSECRET_KEY=from-the-file\nALLOWED_HOSTS=file.example.org\n")

    assert _settings("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", ATLAS_ENV_FILE=str(env_file)) == [
        "True",
        "'from-the-file'",
        "['file.example.org']",
    ]
    # A variable set in the environment beats the file (production overrides a stray .env).
    assert _settings(
        "DEBUG",
        "SECRET_KEY",
        ATLAS_ENV_FILE=str(env_file),
        DEBUG="0",
        SECRET_KEY="from-env",
        LOCATION_MASK_KEY="m" * 50,
    ) == [
        "False",
        "'from-env'",
    ]
    # Empty ATLAS_ENV_FILE reads no file at all.
    assert _settings("DEBUG", "SECRET_KEY", DEBUG="1") == ["True", "'dev-only-insecure-key'"]


def test_production_key_from_an_env_file_is_enough_to_start(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DEBUG=0\nSECRET_KEY=" + "k" * 50 + "\nLOCATION_MASK_KEY=" + "m" * 50 + "\nALLOWED_HOSTS=atlas.example.org\n"
    )
    result = _manage("check", ATLAS_ENV_FILE=str(env_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_writes_a_development_env_once_and_manage_py_runs_with_it_alone(tmp_path):
    env_file = tmp_path / ".env"
    script = [str(ROOT / "scripts" / "dev-env.sh"), str(env_file)]
    written = subprocess.run(script, capture_output=True, text=True, timeout=30, check=True)
    assert "Wrote" in written.stdout
    content = env_file.read_text()
    values = dict(line.split("=", 1) for line in content.splitlines() if line and not line.startswith("#"))
    assert values["DEBUG"] == "1"
    assert len(values["SECRET_KEY"]) >= 50
    assert values["SECRET_KEY"] != "dev-only-insecure-key"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    # What the README shows, `python manage.py ...` with nothing exported, works with that file.
    result = _manage("check", ATLAS_ENV_FILE=str(env_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert _settings("DEBUG", "SECRET_KEY", ATLAS_ENV_FILE=str(env_file)) == ["True", repr(values["SECRET_KEY"])]

    # A second run keeps the developer's file (and its key) as it is.
    env_file.write_text(content + "LOG_LEVEL=DEBUG\n")
    subprocess.run(script, capture_output=True, text=True, timeout=30, check=True)
    assert env_file.read_text() == content + "LOG_LEVEL=DEBUG\n"

    other = tmp_path / "other.env"
    subprocess.run([script[0], str(other)], capture_output=True, text=True, timeout=30, check=True)
    assert other.read_text() != content  # a new random key each time


def test_production_refuses_to_start_without_a_location_mask_key():
    result = _manage("check", DEBUG="0", ALLOWED_HOSTS="atlas.example.org", SECRET_KEY="s" * 50)
    assert result.returncode != 0
    assert "LOCATION_MASK_KEY" in result.stderr


def test_street_addresses_go_to_the_ban_by_default_with_a_short_timeout_and_a_pause():
    enabled, timeout, pause = _settings(
        "GEOCODER_BAN_ENABLED", "GEOCODER_BAN_TIMEOUT", "GEOCODER_BAN_RETRY_AFTER", DEBUG="1"
    )
    assert enabled == "True"
    assert float(timeout) <= 2.0
    assert int(pause) >= 60
    assert _settings("GEOCODER_BAN_ENABLED", DEBUG="1", GEOCODER_BAN_ENABLED="0") == ["False"]
