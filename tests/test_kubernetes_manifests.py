"""The Kubernetes manifests in deploy/kubernetes/base: valid for the Kubernetes we name, and true
to the bot they run.

No cluster runs here, so each document is validated against that Kubernetes version's OpenAPI
schemas (`kubernetes-validate`, strict: an unknown field is an error), and what a schema cannot
know is checked against the code: the probes are our probe routes, the autoscaler's metric is one
the bot exports, every setting is one the bot reads, the grace period outlasts the drain.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bots import lifecycle, metrics
from bots.daily.routes import HANDOVER_SECS
from bots.server.health import PROBE_PATHS
from bots.server.run import CLOSE_GRACE_SECS, LEFTOVER_GRACE_SECS
from bots.settings import Settings

pytestmark = pytest.mark.unit

KUBERNETES_VERSION = "1.37.0"
"""The Kubernetes release the manifests are validated for (the newest `kubernetes-validate`
bundles, current in late 2026)."""
REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "deploy" / "kubernetes" / "base"
SECRET_SETTINGS = {
    name.upper() for name, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)
}
"""The settings the bot holds as secrets (API keys, tokens, the database URL's password)."""


def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return loaded


def documents() -> list[dict[str, Any]]:
    return [
        doc
        for name in kustomization()["resources"]
        for doc in yaml.safe_load_all((BASE / name).read_text())
        if doc is not None
    ]


def one(kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in documents() if doc["kind"] == kind]
    return found


def bot_container() -> dict[str, Any]:
    (container,) = one("Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def test_the_kustomization_lists_every_manifest_in_the_folder_and_nothing_else() -> None:
    on_disk = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization()["resources"]) == sorted(on_disk)


@pytest.mark.parametrize(
    "document", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_each_manifest_is_valid_for_the_pinned_kubernetes_version(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_check_refuses_a_field_kubernetes_does_not_have() -> None:
    broken = copy.deepcopy(one("Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError, match="paht"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    wrong_type = copy.deepcopy(one("Service"))
    wrong_type["spec"]["ports"][0]["port"] = "seventy-eight-sixty"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, KUBERNETES_VERSION, strict=True)


def test_every_selector_picks_the_bot_pods() -> None:
    deployment = one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [
        deployment["spec"]["selector"]["matchLabels"],
        one("Service")["spec"]["selector"],
        one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one("NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector and selector.items() <= labels.items()


def test_the_probes_are_the_bots_own_liveness_and_readiness_routes() -> None:
    container = bot_container()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    # The kubelet probes by the pod's address: these paths answer whatever the Host header.
    assert {"/readyz", "/healthz"} <= PROBE_PATHS
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    assert ports["http"] == 7860 and "--port" in container["args"]
    assert container["args"][container["args"].index("--port") + 1] == "7860"


def test_the_grace_period_outlasts_the_drain_that_the_prestop_hook_starts() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    hook = " ".join(bot_container()["lifecycle"]["preStop"]["exec"]["command"])
    assert "os.kill(1, signal.SIGTERM)" in hook  # the bot is PID 1: its first stop signal
    drain = HANDOVER_SECS + lifecycle.GRACE_SECS + CLOSE_GRACE_SECS + LEFTOVER_GRACE_SECS
    assert pod["terminationGracePeriodSeconds"] >= drain + 10
    # In Daily mode no page is asked to move (the rooms are handed over instead), so the
    # move period adds nothing; a SmallWebRTC fleet's grace must also cover DRAIN_MOVE_SECS.
    assert "-t" in bot_container()["args"] and "daily" in bot_container()["args"]


def test_the_autoscaler_scales_the_deployment_on_a_metric_the_bot_exports() -> None:
    hpa = one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == one("Deployment")["metadata"]["name"]
    (metric,) = hpa["spec"]["metrics"]
    exported = {m.name for m in metrics.REGISTRY.collect()}
    assert metric["pods"]["metric"]["name"] in exported
    target = float(metric["pods"]["target"]["averageValue"])
    # Below the per-pod cap, so a new conversation finds room while another pod starts.
    assert target < int(one("ConfigMap")["data"]["MAX_SESSIONS"])


def test_every_setting_is_one_the_bot_reads_and_secrets_are_only_in_the_secret() -> None:
    known = {name.upper() for name in Settings.model_fields}
    config = set(one("ConfigMap")["data"])
    secret = set(one("Secret")["stringData"])
    assert config <= known and secret <= known
    assert not config & SECRET_SETTINGS
    assert secret <= SECRET_SETTINGS
    refs = {
        ref["configMapRef"]["name"] for ref in bot_container()["envFrom"] if "configMapRef" in ref
    }
    refs |= {ref["secretRef"]["name"] for ref in bot_container()["envFrom"] if "secretRef" in ref}
    assert refs == {one("ConfigMap")["metadata"]["name"], one("Secret")["metadata"]["name"]}


def test_the_pod_runs_as_the_images_user_with_nothing_it_does_not_need() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    uid = re.search(r"--uid (\d+)", (REPO / "Dockerfile").read_text())
    assert uid is not None and pod["securityContext"]["runAsUser"] == int(uid.group(1))
    assert pod["automountServiceAccountToken"] is False
    context = bot_container()["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in bot_container()["volumeMounts"]}
    assert {"/data", "/tmp"} <= mounts  # the only places the bot writes
    assert one("ConfigMap")["data"]["DATA_DIR"] == "/data"


def test_the_network_policy_lets_in_only_http_and_out_only_dns_the_database_and_https() -> None:
    policy = one("NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": 7860, "protocol": "TCP"}]
    out_ports = sorted({p["port"] for rule in policy["egress"] for p in rule["ports"]})
    assert out_ports == [53, 443, 5432]
