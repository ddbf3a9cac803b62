"""docker-compose.yml and the Dockerfile, checked statically (no Docker engine here): the file
parses, images are pinned, every payreports setting a service receives exists in Settings,
host ports are unique, every long-running service has a healthcheck, data lives in named
volumes, and the image installs from pyproject.toml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from exports.settings import REPO_ROOT, Settings

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
ONE_SHOT = {"migrate", "s3-init"}  # run to completion, others wait on their success
PINNED_TAG = re.compile(r"^[^:@]+(:(?P<tag>[^@]+))?(@sha256:[0-9a-f]{64})?$")


def _env_file_entries(path: Path) -> dict[str, str]:
    entries = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries[key.strip()] = value
    return entries


def _service_env(service: dict) -> dict[str, str]:
    env: dict[str, str] = {}
    env_files = service.get("env_file", [])
    for name in [env_files] if isinstance(env_files, str) else env_files:
        env.update(_env_file_entries(REPO_ROOT / name))
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    env.update({key: str(value) for key, value in environment.items()})
    return env


def test_expected_services_are_there():
    assert {"postgres", "clickhouse", "s3", "smtp", "code-platform", "code-reports",
            "dagster-webserver", "dagster-daemon", "api"} <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned(name):
    service = SERVICES[name]
    if "build" in service:
        assert service.get("image", "").split(":")[-1] not in ("", "latest")
        return
    image = service["image"]
    match = PINNED_TAG.match(image)
    assert match, image
    tag = match.group("tag")
    assert "@sha256:" in image or (tag and tag != "latest" and re.search(r"\d", tag)), (
        f"{name}: pin {image} to a versioned tag or a digest")


def test_payreports_settings_exist():
    fields = {f"PAYREPORTS_{name.upper()}" for name in Settings.model_fields}
    for name, service in SERVICES.items():
        for key in _service_env(service):
            if key.startswith("PAYREPORTS_"):
                assert key in fields, f"{name}: {key} is not a field of exports.settings.Settings"


def test_every_payreports_service_gets_external_services_configured():
    for name, service in SERVICES.items():
        env = _service_env(service)
        if not any(key.startswith("PAYREPORTS_") for key in env):
            continue
        fields = {key.removeprefix("PAYREPORTS_").lower(): value
                  for key, value in env.items() if key.startswith("PAYREPORTS_")}
        # The shipped file has no usable secrets, so production settings refuse it (see
        # test_shipped_env_is_refused_in_production_until_its_secrets_are_replaced).
        settings = Settings(**{**fields, "environment": "development"})
        # No embedded fallbacks in the stack: three Postgres URLs, a ClickHouse server, S3.
        assert not settings.uses_embedded_postgres, name
        assert not settings.warehouse_is_embedded, name
        assert settings.storage_backend == "s3", name
        assert env.get("DAGSTER_PG_URL", "").startswith("postgresql://"), name


def test_shipped_env_is_refused_in_production_until_its_secrets_are_replaced():
    import secrets

    from pydantic import ValidationError

    env = _service_env(SERVICES["api"])
    fields = {key.removeprefix("PAYREPORTS_").lower(): value
              for key, value in env.items() if key.startswith("PAYREPORTS_")}
    assert fields["environment"] == "production"
    with pytest.raises(ValidationError) as error:
        Settings(**fields)
    for variable in ("PAYREPORTS_SIGNING_SECRET", "PAYREPORTS_APP_DATABASE_URL",
                     "PAYREPORTS_CLICKHOUSE_URL", "PAYREPORTS_S3_SECRET_ACCESS_KEY"):
        assert variable in str(error.value)
    password = secrets.token_urlsafe(24)
    replaced = {key: value.replace("payreports-dev-password", password) for key, value in fields.items()}
    Settings(**{**replaced, "signing_secret": secrets.token_hex(32)})


def test_dagster_yaml_env_vars_are_provided():
    needed = set(re.findall(r"env:\s*(DAGSTER_[A-Z_]+)", (REPO_ROOT / "dagster.yaml").read_text()))
    assert needed
    for name in ("code-platform", "code-reports", "dagster-webserver", "dagster-daemon"):
        assert needed <= set(_service_env(SERVICES[name])), name


def test_host_ports_do_not_clash():
    seen: dict[tuple[str, str], str] = {}
    for name, service in SERVICES.items():
        for mapping in service.get("ports", []):
            parts = str(mapping).split(":")
            assert len(parts) == 3, f"{name}: bind {mapping} to an explicit host address"
            key = (parts[0], parts[1])
            assert key not in seen, f"{name} and {seen.get(key)} both publish {mapping}"
            seen[key] = name


@pytest.mark.parametrize("name", sorted(set(SERVICES) - ONE_SHOT))
def test_long_running_services_have_healthchecks(name):
    healthcheck = SERVICES[name].get("healthcheck")
    assert healthcheck and healthcheck.get("test"), f"{name} has no healthcheck"


def test_depends_on_uses_conditions_on_real_services():
    for name, service in SERVICES.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            condition = spec["condition"]
            if dependency in ONE_SHOT:
                assert condition == "service_completed_successfully", (name, dependency)
            else:
                assert condition == "service_healthy", (name, dependency)
                assert SERVICES[dependency].get("healthcheck"), dependency


def test_state_lives_in_named_volumes():
    declared = set(COMPOSE["volumes"])
    used = set()
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith((".", "/")):
                assert str(volume).endswith(":ro"), f"{name}: bind mounts are read-only config"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared
    for stateful in ("postgres", "clickhouse", "s3"):
        assert any(str(v).split(":")[0] in declared for v in SERVICES[stateful]["volumes"]), stateful


def test_mounted_and_referenced_files_exist():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (REPO_ROOT / source).exists(), f"{name}: {source} is missing"
    prometheus = yaml.safe_load((REPO_ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == ["api:8000"]
    workspace = yaml.safe_load((REPO_ROOT / "workspace.production.yaml").read_text())
    local = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())
    local_modules = {entry["python_module"]["location_name"]: entry["python_module"]["module_name"]
                     for entry in local["load_from"]}
    grpc_servers = [entry["grpc_server"] for entry in workspace["load_from"]]
    # Production serves exactly the locations the local workspace loads, each from its module.
    assert {g["location_name"] for g in grpc_servers} == set(local_modules)
    for grpc in grpc_servers:
        command = SERVICES[grpc["host"]]["command"]
        assert str(grpc["port"]) in command and local_modules[grpc["location_name"]] in command


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_base_is_pinned_and_installs_from_pyproject():
    instructions = _dockerfile_instructions()
    bases = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert bases
    for base in bases:
        image = base.split()[0]
        tag = image.partition(":")[2]
        assert "@sha256:" in image or re.fullmatch(r"\d+\.\d+\.\d+[-\w.]*", tag), image
    copies = [rest for keyword, rest in instructions if keyword == "COPY"]
    assert any("pyproject.toml" in rest.split() for rest in copies)
    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    install = [rest for rest in runs if "pip install" in rest]
    assert install and all(re.search(r"pip install (-e )?\.(\s|$)", rest) for rest in install)
    assert not any("requirements" in rest for rest in copies + runs), "versions live in pyproject"
    # Everything pip needs for the package must be in the build context.
    ignored = {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()}
    for package in ("exports", "orchestration", "api"):
        assert package not in ignored and any(rest.startswith(package) for rest in copies)
