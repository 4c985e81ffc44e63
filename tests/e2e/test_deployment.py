"""docker/: the compose file validates, and every service runs a `concierge` command that the
CLI knows. No engine runs here, so images are never built in tests.

The Compose client is Docker's `docker-compose` binary, which `make test` puts into the
virtualenv (see the Makefile: no root needed); one on PATH is used when the venv has none."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bots.cli import resolve
from tests.processes import REPO, clean_env

COMPOSE = REPO / "docker" / "compose.yaml"
# The passwords `up` refuses to start without (an operator sets them in docker/.env).
REQUIRED = {
    "CONCIERGE_REDIS_PASSWORD": "redis0pw1",
    "CONCIERGE_POSTGRES_PASSWORD": "store0pw2",
    "CONCIERGE_FLOWER_USER": "ops",
    "CONCIERGE_FLOWER_PASSWORD": "flower0pw3",
}


def compose_client() -> str:
    beside_python = Path(sys.executable).parent / "docker-compose"
    found = str(beside_python) if beside_python.exists() else shutil.which("docker-compose")
    if found is None:
        pytest.fail("no docker-compose: `make test` installs it into .venv (see the Makefile)")
    return found


def compose_config(**env: str | None) -> subprocess.CompletedProcess[str]:
    # A developer's CONCIERGE_* variables would change the file's interpolation: clean_env.
    merged = clean_env() | {"CONCIERGE_ENV_FILE": "../.env.example", **REQUIRED, **env}
    merged = {name: value for name, value in merged.items() if value is not None}
    return subprocess.run(
        [compose_client(), "-f", str(COMPOSE), "config"],
        env=merged,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    done = compose_config()
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = yaml.safe_load(done.stdout)
    return parsed


def test_compose_file_validates_with_the_services_the_deployment_needs(
    config: dict[str, Any],
) -> None:
    assert set(config["services"]) == {"redis", "postgres", "worker", "beat", "telegram",
                                       "slack", "web", "flower"}
    store = config["services"]["worker"]["environment"]["CONCIERGE_STORE_URL"]
    assert store.startswith("postgresql://concierge:")  # all processes share one store
    assert config["services"]["worker"]["deploy"]["replicas"] == 2


def test_the_retraining_promotes_into_the_models_the_workers_read(
    config: dict[str, Any],
) -> None:
    def mounts(name: str) -> list[str]:
        return [v if isinstance(v, str) else f"{v['source']}:{v['target']}"
                for v in config["services"][name].get("volumes", [])]

    assert "models:/app/models" in mounts("beat") and "models:/app/models" in mounts("worker")


def test_worker_replicas_come_from_the_environment() -> None:
    done = compose_config(CONCIERGE_WORKER_REPLICAS="5")
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["services"]["worker"]["deploy"]["replicas"] == 5
    broken = compose_config(CONCIERGE_WORKER_REPLICAS="five")
    assert broken.returncode != 0 and "replicas" in broken.stderr


def test_every_published_port_is_bound_to_loopback(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            published = port if isinstance(port, str) else f"{port.get('host_ip')}:"
            assert published.startswith("127.0.0.1:"), (name, port)


@pytest.mark.parametrize("service", ["worker", "beat", "telegram", "slack", "web", "flower"])
def test_each_service_runs_a_concierge_command(config: dict[str, Any], service: str) -> None:
    command = config["services"][service]["command"]
    found = resolve(list(command))
    assert found is not None, f"`concierge {command[0]}` is not wired into bots/cli.py"
    assert callable(found[0])


def test_image_runs_as_a_user_with_cpu_torch_pinned() -> None:
    text = (REPO / "docker" / "Dockerfile").read_text()
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in text
    assert "\nUSER concierge\n" in text and "HF_HUB_OFFLINE=1" in text
    assert 'ENTRYPOINT ["concierge"]' in text


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_up_refuses_without_each_password(variable: str) -> None:
    done = compose_config(**{variable: None})
    assert done.returncode != 0 and variable in done.stderr


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def test_redis_requires_its_password_and_is_not_published(config: dict[str, Any]) -> None:
    redis = config["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--requirepass") + 1] == REQUIRED["CONCIERGE_REDIS_PASSWORD"]
    assert redis["environment"]["REDISCLI_AUTH"] == REQUIRED["CONCIERGE_REDIS_PASSWORD"]
    assert "redis-cli" in redis["healthcheck"]["test"]  # which reads REDISCLI_AUTH
    assert not redis.get("ports")


def test_no_service_reaches_redis_without_the_password(config: dict[str, Any]) -> None:
    urls = [text for text in strings(config["services"]) if text.startswith("redis://")]
    assert len(urls) >= 3 * 4  # state, broker and results, for each concierge service
    for url in urls:
        assert urlsplit(url).password == REQUIRED["CONCIERGE_REDIS_PASSWORD"], url


def test_flower_has_a_login_and_only_flower_knows_it(config: dict[str, Any]) -> None:
    flower = config["services"]["flower"]
    assert flower["environment"]["CONCIERGE_FLOWER_USER"] == REQUIRED["CONCIERGE_FLOWER_USER"]
    password = REQUIRED["CONCIERGE_FLOWER_PASSWORD"]
    assert flower["environment"]["CONCIERGE_FLOWER_PASSWORD"] == password
    assert "--no-auth" not in flower["command"]
    others = {name: service for name, service in config["services"].items() if name != "flower"}
    assert password not in list(strings(others))


def flower_command(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bots.cli", "flower", *args], cwd=tmp_path,
                          env=clean_env(**settings), capture_output=True, text=True, timeout=60)


def test_concierge_flower_refuses_to_start_without_a_login(tmp_path: Path) -> None:
    done = flower_command(tmp_path, "--address=0.0.0.0")
    assert done.returncode == 2 and "CONCIERGE_FLOWER_PASSWORD" in done.stderr
    done = flower_command(tmp_path, flower_user="ops")
    assert done.returncode == 2 and "CONCIERGE_FLOWER_PASSWORD" in done.stderr
    done = flower_command(tmp_path, "--address=0.0.0.0", "--no-auth")
    assert done.returncode == 2 and "only allowed on a loopback address" in done.stderr


def test_doctor_for_flower_names_the_missing_login(tmp_path: Path) -> None:
    from tests.bots.test_doctor import doctor

    code, out = doctor(tmp_path, "--for", "flower")
    assert code == 1 and "`concierge flower` refuses to start without a login" in out
    code, out = doctor(tmp_path, "--for", "flower", flower_user="ops", flower_password="pw0pw0")
    assert "CONCIERGE_FLOWER_USER and CONCIERGE_FLOWER_PASSWORD are set" in out
    assert "pw0pw0" not in out
