"""The Kubernetes manifests in deploy/kubernetes, checked offline.

Every object is validated against the Kubernetes OpenAPI schemas bundled with
kubernetes-validate (strict: unknown fields are errors), for a pinned Kubernetes version.
Then the manifests are checked against each other and against the service's contract:
probes, ports, resources, hardening, selectors, autoscaling, shutdown timing, the
environment's sources, the Secret template and the migration Job.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33"

API_PORT = 8000
METRICS_PORT = 9464
UID = 10001
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a pod listens on all its interfaces
IMAGE = "popliteal:1.0.0"
MIGRATE_COMMAND = ["flask", "--app", "service.wsgi", "db", "upgrade"]
PLACEHOLDER = "REPLACE_ME"
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"

CONFIG_ENV = {
    "POPLITEAL_CONFIG",
    "HOST",
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "POPLITEAL_METRICS_HOST",
    "POPLITEAL_METRICS_PORT",
    "POPLITEAL_PROXY_HOPS",
    "POPLITEAL_CORS_ORIGINS",
    "POPLITEAL_HSTS_SECONDS",
    "POPLITEAL_DB_STATEMENT_TIMEOUT_MS",
}
SECRET_ENV = {"DATABASE_URL", "RATELIMIT_STORAGE_URI"}

Manifest = dict[str, Any]


# -- Loading ---------------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(
        path
        for path in MANIFESTS.iterdir()
        if path.suffix in {".yaml", ".yml"} and path.name != "kustomization.yaml"
    )


def load(path: Path) -> list[Manifest]:
    with path.open(encoding="utf-8") as stream:
        return [document for document in yaml.safe_load_all(stream) if document is not None]


def load_objects() -> list[tuple[str, Manifest]]:
    return [(path.name, document) for path in manifest_files() for document in load(path)]


OBJECTS = load_objects()


def object_id(entry: tuple[str, Manifest]) -> str:
    filename, manifest = entry
    return f"{filename}:{manifest['kind']}/{manifest['metadata']['name']}"


def only(kind: str) -> Manifest:
    found = [manifest for _, manifest in OBJECTS if manifest["kind"] == kind]
    assert len(found) == 1, f"expected exactly one {kind}, found {len(found)}"
    return found[0]


def named(kind: str, name: str) -> Manifest | None:
    for _, manifest in OBJECTS:
        if manifest["kind"] == kind and manifest["metadata"]["name"] == name:
            return manifest
    return None


def deployment() -> Manifest:
    return only("Deployment")


def job() -> Manifest:
    return only("Job")


def config_map() -> Manifest:
    return only("ConfigMap")


def secret() -> Manifest:
    return only("Secret")


def pod_spec(workload: Manifest) -> Manifest:
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: Manifest) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def containers(workload: Manifest) -> list[Manifest]:
    spec = pod_spec(workload)
    return spec.get("initContainers", []) + spec["containers"]


def api_container() -> Manifest:
    (container,) = pod_spec(deployment())["containers"]
    return container


def config_value(key: str) -> str:
    return config_map()["data"][key]


WORKLOADS = {"Deployment": deployment, "Job": job}
workload_kinds = pytest.mark.parametrize("kind", sorted(WORKLOADS))


# -- Helpers ---------------------------------------------------------------------------------


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) selects these labels."""
    if not selector:
        return False  # an empty selector is never what these manifests mean
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def cpu_millicores(quantity: str | int | float) -> Decimal:
    text = str(quantity)
    if text.endswith("m"):
        return Decimal(text[:-1])
    return Decimal(text) * 1000


BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
DECIMAL_SUFFIXES = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def memory_bytes(quantity: str | int) -> Decimal:
    text = str(quantity)
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", text)
    assert match, f"not a memory quantity: {text!r}"
    number, suffix = match.groups()
    factors = {"": 1, **BINARY_SUFFIXES, **DECIMAL_SUFFIXES}
    assert suffix in factors, f"unknown suffix in {text!r}"
    return Decimal(number) * factors[suffix]


def container_port(container: Manifest, port: int | str) -> int:
    """The number behind a probe's or Service's port, which may name a container port."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container.get("ports", []) if p["name"] == port]
    return number


def env_names(container: Manifest) -> set[str]:
    """Every variable the container gets: its env entries and the keys of its envFrom sources."""
    names = {entry["name"] for entry in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(config_map_keys(source["configMapRef"]["name"]))
        if "secretRef" in source:
            names |= set(secret_keys(source["secretRef"]["name"]))
    return names


def config_map_keys(name: str) -> list[str]:
    found = named("ConfigMap", name)
    assert found is not None, f"no ConfigMap {name!r} in {MANIFESTS.name}"
    return list(found.get("data", {}))


def secret_keys(name: str) -> list[str]:
    found = named("Secret", name)
    assert found is not None, f"no Secret {name!r} in {MANIFESTS.name}"
    return list(found.get("stringData", {})) + list(found.get("data", {}))


def prestop_sleep_seconds(container: Manifest) -> int:
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", command
    return int(command[1])


# -- Schema validation -----------------------------------------------------------------------


def test_the_folder_holds_manifests():
    kinds = {manifest["kind"] for _, manifest in OBJECTS}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ConfigMap",
        "Secret",
        "Job",
        "PodDisruptionBudget",
    } <= kinds


@pytest.mark.parametrize("entry", OBJECTS, ids=object_id)
def test_every_manifest_validates_against_the_kubernetes_schema_in_strict_mode(entry):
    _, manifest = entry
    try:
        validated = kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path)
        pytest.fail(f"{where}: {error.message}", pytrace=False)
    assert validated == KUBERNETES_VERSION


def test_the_validator_rejects_a_misspelt_field_in_strict_mode_only():
    broken = copy.deepcopy(deployment())
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=False)
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePullPolicyy"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_replicas_that_are_not_a_number():
    broken = copy.deepcopy(deployment())
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError) as caught:
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    assert list(caught.value.path) == ["spec", "replicas"]


@pytest.mark.parametrize("entry", OBJECTS, ids=object_id)
def test_every_object_carries_the_name_label_and_leaves_the_namespace_to_the_operator(entry):
    _, manifest = entry
    assert manifest["metadata"]["labels"][NAME_LABEL] == "popliteal"
    assert "namespace" not in manifest["metadata"]


def test_no_two_objects_share_a_kind_and_name():
    keys = [(manifest["kind"], manifest["metadata"]["name"]) for _, manifest in OBJECTS]
    assert len(keys) == len(set(keys))


# -- Kustomization ---------------------------------------------------------------------------


def kustomization() -> Manifest:
    (document,) = load(MANIFESTS / "kustomization.yaml")
    return document


def test_the_kustomization_lists_every_manifest_in_the_folder_and_nothing_else():
    document = kustomization()
    assert document["kind"] == "Kustomization"
    resources = document["resources"]
    assert len(resources) == len(set(resources))
    assert sorted(resources) == [path.name for path in manifest_files()]


def test_shared_objects_and_the_migration_job_can_be_applied_before_the_api():
    """README: `kubectl apply -k … -l 'app.kubernetes.io/component!=api'` runs the Job first."""
    first = {
        manifest["kind"]
        for _, manifest in OBJECTS
        if manifest["metadata"]["labels"].get(COMPONENT_LABEL) != "api"
    }
    assert first == {"ServiceAccount", "ConfigMap", "Secret", "Job"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds_the_folder_into_every_object():
    built = subprocess.run(
        ["kubectl", "kustomize", str(MANIFESTS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    objects = [document for document in yaml.safe_load_all(built) if document]
    assert len(objects) == len(OBJECTS)


# -- Probes and ports ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probe", "path"),
    [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")],
)
def test_the_probe_asks_the_right_path_on_the_api_port(probe, path):
    container = api_container()
    http_get = container[probe]["httpGet"]
    assert http_get["path"] == path
    assert container_port(container, http_get["port"]) == API_PORT
    assert http_get.get("scheme", "HTTP") == "HTTP"


def test_the_container_ports_and_the_configured_ports_agree():
    container = api_container()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": API_PORT, "metrics": METRICS_PORT}
    assert int(config_value("PORT")) == API_PORT
    assert int(config_value("POPLITEAL_METRICS_PORT")) == METRICS_PORT
    assert config_value("HOST") == config_value("POPLITEAL_METRICS_HOST") == ALL_INTERFACES


def test_the_metrics_port_is_named_and_annotated_for_scraping():
    annotations = deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(METRICS_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    assert container_port(api_container(), "metrics") == METRICS_PORT


def test_the_deployment_keeps_the_images_default_command():
    container = api_container()
    assert "command" not in container
    assert "args" not in container


# -- Service ---------------------------------------------------------------------------------


def test_the_service_is_cluster_internal_and_maps_port_80_to_the_api():
    service = only("Service")
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["name"] == "http"
    assert port["port"] == 80
    assert container_port(api_container(), port["targetPort"]) == API_PORT


def test_the_service_does_not_expose_the_metrics_port():
    for port in only("Service")["spec"]["ports"]:
        assert METRICS_PORT not in {port["port"], port.get("targetPort")}
        assert port.get("targetPort") != "metrics"
        assert container_port(api_container(), port.get("targetPort", port["port"])) != (
            METRICS_PORT
        )


def test_the_service_selects_the_api_pods_and_not_the_migration_job():
    selector = {"matchLabels": only("Service")["spec"]["selector"]}
    assert selects(selector, pod_labels(deployment()))
    assert not selects(selector, pod_labels(job()))


def test_the_deployment_selector_matches_its_own_pods_and_not_the_migration_job():
    selector = deployment()["spec"]["selector"]
    assert selects(selector, pod_labels(deployment()))
    assert not selects(selector, pod_labels(job()))
    assert pod_labels(deployment())[COMPONENT_LABEL] == "api"
    assert pod_labels(job())[COMPONENT_LABEL] == "migrate"


def test_pods_get_no_service_link_variables_that_would_clash_with_the_settings():
    for workload in (deployment(), job()):
        assert pod_spec(workload)["enableServiceLinks"] is False


# -- Resources and hardening -----------------------------------------------------------------


@workload_kinds
def test_every_container_requests_and_limits_cpu_and_memory(kind):
    for container in containers(WORKLOADS[kind]()):
        resources = container["resources"]
        for resource, parse in (("cpu", cpu_millicores), ("memory", memory_bytes)):
            request = parse(resources["requests"][resource])
            limit = parse(resources["limits"][resource])
            assert 0 < request <= limit, (container["name"], resource)


def test_each_gunicorn_worker_has_between_a_half_and_a_whole_core_requested():
    workers = int(config_value("WEB_CONCURRENCY"))
    per_worker = cpu_millicores(api_container()["resources"]["requests"]["cpu"]) / workers
    assert 500 <= per_worker <= 1000


@workload_kinds
def test_the_pod_security_context_runs_as_the_images_unprivileged_user(kind):
    spec = pod_spec(WORKLOADS[kind]())
    context = spec["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == UID
    assert context["runAsGroup"] == UID
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False


@workload_kinds
def test_every_container_is_locked_down(kind):
    for container in containers(WORKLOADS[kind]()):
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context.get("runAsUser", UID) == UID
        assert context.get("runAsGroup", UID) == UID
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context.get("privileged", False) is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert not context["capabilities"].get("add")
        assert context.get("seccompProfile", {"type": "RuntimeDefault"}) == {
            "type": "RuntimeDefault"
        }


@workload_kinds
def test_tmp_is_a_size_limited_memory_backed_empty_dir_and_the_only_writable_mount(kind):
    workload = WORKLOADS[kind]()
    volumes = {volume["name"]: volume for volume in pod_spec(workload).get("volumes", [])}
    for container in containers(workload):
        mounts = {mount["mountPath"]: mount for mount in container.get("volumeMounts", [])}
        tmp = volumes[mounts["/tmp"]["name"]]
        assert tmp["emptyDir"]["medium"] == "Memory"
        size = memory_bytes(tmp["emptyDir"]["sizeLimit"])
        assert size < memory_bytes(container["resources"]["limits"]["memory"])
        for path, mount in mounts.items():
            if path != "/tmp":
                assert mount.get("readOnly") is True, path


@workload_kinds
def test_the_service_account_the_pods_use_exists_and_mounts_no_token(kind):
    spec = pod_spec(WORKLOADS[kind]())
    # The pod itself mounts no token, whichever account it runs as (the default one would).
    assert spec.get("automountServiceAccountToken") is False
    name = spec.get("serviceAccountName")
    if name is not None:
        account = named("ServiceAccount", name)
        assert account is not None
        assert account["automountServiceAccountToken"] is False


# -- Rollout, spreading, shutdown ------------------------------------------------------------


def test_a_rolling_update_never_takes_a_pod_away_before_its_replacement_is_ready():
    strategy = deployment()["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] in (0, "0%")
    assert strategy["rollingUpdate"]["maxSurge"] in (1, "25%")


def test_the_pods_spread_across_nodes():
    spec = pod_spec(deployment())
    labels = pod_labels(deployment())
    spreads = [
        constraint
        for constraint in spec.get("topologySpreadConstraints", [])
        if constraint["topologyKey"] == "kubernetes.io/hostname"
        and selects(constraint["labelSelector"], labels)
    ]
    anti_affinity = spec.get("affinity", {}).get("podAntiAffinity")
    assert spreads or anti_affinity


def test_termination_grace_outlasts_the_prestop_sleep_and_gunicorns_graceful_timeout():
    graceful = int(config_value("GUNICORN_GRACEFUL_TIMEOUT"))
    sleep = prestop_sleep_seconds(api_container())
    assert 0 < sleep <= 10
    assert pod_spec(deployment())["terminationGracePeriodSeconds"] > sleep + graceful


# -- Autoscaling and disruption --------------------------------------------------------------


def hpa() -> Manifest:
    return only("HorizontalPodAutoscaler")


def test_the_autoscaler_scales_the_deployment_on_cpu_from_at_least_two_pods():
    spec = hpa()["spec"]
    assert hpa()["apiVersion"] == "autoscaling/v2"
    target = spec["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
    assert target["name"] == deployment()["metadata"]["name"]
    assert spec["minReplicas"] >= 2
    assert spec["maxReplicas"] > spec["minReplicas"]
    resources = [metric["resource"]["name"] for metric in spec["metrics"]]
    assert "cpu" in resources


def test_the_autoscaler_waits_before_scaling_down():
    assert hpa()["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60


def test_the_deployment_leaves_the_replica_count_to_the_autoscaler():
    assert "replicas" not in deployment()["spec"]


def test_the_disruption_budget_selects_the_api_pods_only():
    selector = only("PodDisruptionBudget")["spec"]["selector"]
    assert selects(selector, pod_labels(deployment()))
    assert not selects(selector, pod_labels(job()))


def test_the_disruption_budget_allows_an_eviction_at_the_minimum_and_keeps_one_pod_serving():
    spec = only("PodDisruptionBudget")["spec"]
    replicas = hpa()["spec"]["minReplicas"]
    if "minAvailable" in spec:
        allowed = replicas - int(spec["minAvailable"])
    else:
        allowed = int(spec["maxUnavailable"])
    assert 1 <= allowed < replicas


# -- Environment, ConfigMap and Secret -------------------------------------------------------


@workload_kinds
def test_every_env_source_resolves_to_an_object_and_key_in_the_folder(kind):
    for container in containers(WORKLOADS[kind]()):
        for source in container.get("envFrom", []):
            reference = source.get("configMapRef") or source["secretRef"]
            assert reference.get("optional") is not True
            if "configMapRef" in source:
                assert named("ConfigMap", reference["name"]) is not None
            else:
                assert named("Secret", reference["name"]) is not None
        for entry in container.get("env", []):
            if "value" in entry:
                continue
            value_from = entry["valueFrom"]
            if "configMapKeyRef" in value_from:
                reference = value_from["configMapKeyRef"]
                assert reference["key"] in config_map_keys(reference["name"])
            else:
                reference = value_from["secretKeyRef"]
                assert reference["key"] in secret_keys(reference["name"])
            assert reference.get("optional") is not True


@workload_kinds
def test_every_setting_the_service_reads_reaches_the_container(kind):
    for container in containers(WORKLOADS[kind]()):
        assert env_names(container) >= CONFIG_ENV | SECRET_ENV


@workload_kinds
def test_no_setting_is_written_inline_in_the_workload(kind):
    for container in containers(WORKLOADS[kind]()):
        assert all("value" not in entry for entry in container.get("env", []))


def test_the_config_map_holds_the_settings_and_no_secrets():
    data = config_map()["data"]
    assert set(data) == CONFIG_ENV
    assert not set(data) & SECRET_ENV
    assert data["POPLITEAL_CONFIG"] == "production"
    assert int(data["POPLITEAL_PROXY_HOPS"]) == 1
    assert int(data["POPLITEAL_HSTS_SECONDS"]) >= 31536000
    assert int(data["POPLITEAL_DB_STATEMENT_TIMEOUT_MS"]) > 0


def test_the_secret_template_holds_only_placeholders():
    template = secret()
    assert template["type"] == "Opaque"
    assert "data" not in template, "base64 data would hide what is in it"
    values = template["stringData"]
    assert set(values) == SECRET_ENV
    for key, value in values.items():
        assert PLACEHOLDER in value, key
        parts = urlsplit(value)
        for part in (parts.username, parts.password, parts.hostname):
            if part is not None:
                assert part.upper().startswith(PLACEHOLDER), (key, part)


@pytest.mark.parametrize(
    ("key", "scheme"),
    [("DATABASE_URL", "postgresql+psycopg"), ("RATELIMIT_STORAGE_URI", "redis")],
)
def test_the_secret_template_shows_the_shape_of_each_url(key, scheme):
    assert urlsplit(secret()["stringData"][key]).scheme == scheme


# -- Migration Job ---------------------------------------------------------------------------


def test_the_job_runs_the_migrations_with_the_deployments_image():
    (container,) = pod_spec(job())["containers"]
    assert container.get("command", []) + container.get("args", []) == MIGRATE_COMMAND
    assert container["image"] == api_container()["image"] == IMAGE


def test_the_job_gets_the_same_environment_and_security_as_the_api():
    (container,) = pod_spec(job())["containers"]
    api = api_container()
    assert container.get("envFrom") == api.get("envFrom")
    assert container.get("env") == api.get("env")
    assert container["securityContext"] == api["securityContext"]
    assert pod_spec(job())["securityContext"] == pod_spec(deployment())["securityContext"]


def test_the_job_gives_up_soon_cleans_up_after_itself_and_never_restarts_in_place():
    spec = job()["spec"]
    assert 0 <= spec["backoffLimit"] <= 3
    assert spec["ttlSecondsAfterFinished"] > 0
    assert pod_spec(job())["restartPolicy"] == "Never"


# -- NetworkPolicy ---------------------------------------------------------------------------


def network_policy() -> Manifest | None:
    policies = [manifest for _, manifest in OBJECTS if manifest["kind"] == "NetworkPolicy"]
    assert len(policies) <= 1
    return policies[0] if policies else None


def rule_ports(rule: Manifest) -> set[int]:
    return {container_port(api_container(), port["port"]) for port in rule.get("ports", [])}


def test_the_network_policy_lets_metrics_in_only_from_the_monitoring_namespace():
    policy = network_policy()
    if policy is None:
        pytest.skip("no NetworkPolicy in the folder")
    assert selects(policy["spec"]["podSelector"], pod_labels(deployment()))
    assert "Ingress" in policy["spec"]["policyTypes"]
    rules = policy["spec"]["ingress"]
    assert all(rule.get("ports") for rule in rules), "a rule without ports opens every port"
    assert any(API_PORT in rule_ports(rule) for rule in rules)
    for rule in rules:
        if METRICS_PORT in rule_ports(rule):
            peers = rule.get("from")
            assert peers
            for peer in peers:
                assert set(peer) == {"namespaceSelector"}
                assert peer["namespaceSelector"].get("matchLabels")
