"""docker/: the compose file validates, and every service runs a `concierge` command that the
CLI knows. No engine runs here, so images are never built in tests."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bots.cli import resolve

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker" / "compose.yaml"
BINARY = shutil.which("docker-compose")
needs_compose = pytest.mark.skipif(
    BINARY is None,
    reason="docker-compose not installed (Debian: apt-get install -y docker-compose)",
)


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    assert BINARY is not None
    merged = {**os.environ, "CONCIERGE_ENV_FILE": "../.env.example", **env}
    return subprocess.run(
        [BINARY, "-f", str(COMPOSE), "config"],
        env=merged,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    if BINARY is None:
        pytest.skip("docker-compose not installed (Debian: apt-get install -y docker-compose)")
    done = compose_config()
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = yaml.safe_load(done.stdout)
    return parsed


@needs_compose
def test_compose_file_validates_with_the_services_the_deployment_needs(
    config: dict[str, Any],
) -> None:
    assert set(config["services"]) == {"redis", "worker", "telegram", "slack", "flower"}
    assert config["services"]["worker"]["deploy"]["replicas"] == 2


@needs_compose
def test_worker_replicas_come_from_the_environment() -> None:
    done = compose_config(CONCIERGE_WORKER_REPLICAS="5")
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["services"]["worker"]["deploy"]["replicas"] == 5
    broken = compose_config(CONCIERGE_WORKER_REPLICAS="five")
    assert broken.returncode != 0 and "replicas" in broken.stderr


@needs_compose
def test_every_published_port_is_bound_to_loopback(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            published = port if isinstance(port, str) else f"{port.get('host_ip')}:"
            assert published.startswith("127.0.0.1:"), (name, port)


# The module each service's code lives in: until it exists on a branch, its command cannot be.
SERVICE_MODULES = {
    "worker": "workers.app",
    "telegram": "bots.telegram",
    "slack": "bots.slack",
    "flower": "workers.dashboard",
}


@needs_compose
@pytest.mark.parametrize("service", sorted(SERVICE_MODULES))
def test_each_service_runs_a_concierge_command(config: dict[str, Any], service: str) -> None:
    if importlib.util.find_spec(SERVICE_MODULES[service]) is None:
        pytest.skip(f"{SERVICE_MODULES[service]} has not landed on this branch yet")
    command = config["services"][service]["command"]
    found = resolve(list(command))
    assert found is not None, f"`concierge {command[0]}` is not wired into bots/cli.py"
    assert callable(found[0])


def test_image_runs_as_a_user_with_cpu_torch_pinned() -> None:
    text = (REPO / "docker" / "Dockerfile").read_text()
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in text
    assert "\nUSER concierge\n" in text and "HF_HUB_OFFLINE=1" in text
    assert 'ENTRYPOINT ["concierge"]' in text
