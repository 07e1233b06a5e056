"""A shared cache (README « Au-delà d'une machine »): `CACHE_URL=redis://…` puts every web process on one Redis.

The first test needs no server: the setting alone gives Django's Redis backend and the `redis`
client it loads. The second starts a Redis server of its own on a Unix socket in a temporary folder
(`redis-server`, installed by scripts/system-deps.sh), never the machine's own.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import environ
import pytest
from django.urls import reverse

from directory.page_cache import HIT_HEADER, KEY_PREFIX
from tests.test_settings import _run

ROOT = Path(__file__).resolve().parent.parent


def test_cache_url_gives_djangos_redis_cache_and_its_client_loads():
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.core.cache import caches\n"
        "config = settings.CACHES['default']\n"
        "print(config['BACKEND']); print(config['LOCATION'])\n"
        "client = caches['default']._cache  # imports redis and builds the pool; connects only on first use\n"
        "print(type(client.get_client(write=False)).__module__)\n"
    )
    result = _run(
        [sys.executable, "-c", code],
        DEBUG="1",
        DJANGO_SETTINGS_MODULE="config.settings",
        CACHE_URL="redis://cache.internal:6379/0",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    backend, location, client_module = result.stdout.splitlines()
    assert backend == "django.core.cache.backends.redis.RedisCache"
    assert location == "redis://cache.internal:6379/0"
    assert client_module.startswith("redis.")


@pytest.fixture
def redis_socket(tmp_path):
    """A throwaway Redis server listening on a Unix socket only (no TCP port, nothing saved)."""
    server = shutil.which("redis-server")
    assert server, "redis-server is missing: scripts/system-deps.sh installs it (Debian package redis-server)"
    socket = tmp_path / "redis.sock"
    process = subprocess.Popen(
        [server, "--port", "0", "--unixsocket", str(socket), "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not socket.exists():
            assert process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield socket
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_kept_page_lives_in_the_shared_redis(db, client, settings, redis_socket):
    import redis

    settings.CACHES = {"default": environ.Env.cache_url_config(f"redis://{redis_socket}")}
    settings.PAGE_CACHE_SECONDS = 600
    assert settings.CACHES["default"]["LOCATION"] == f"unix://{redis_socket}"
    server = redis.Redis(unix_socket_path=str(redis_socket))
    assert server.dbsize() == 0

    page = reverse("directory:home")
    assert client.get(page)[HIT_HEADER] == "miss"
    # What another web process reads: the page is in Redis, and so it is answered from there.
    assert any(KEY_PREFIX.encode() in key for key in server.keys("*"))
    assert client.get(page)[HIT_HEADER] == "hit"
