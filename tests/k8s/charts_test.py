#!/usr/bin/env python3
"""The Helm charts, tested offline (ADR 0022 §5).

For every chart in k8s/charts/ and every organisation's values file for it in
k8s/values/<organisation>/<chart>.yaml:
  - helm v4 `lint --strict` and `template`;
  - the generated files are current (values.schema.json, the README's table of values);
  - every built-in resource passes `kubernetes-validate --strict` for the lowest and the highest
    Kubernetes version the charts claim (Chart.yaml kubeVersion; the highest the tool knows);
  - every custom resource passes its CRD's openAPIV3Schema (third_party/k8s-crds), at a version
    the CRD serves;
  - value -> manifest assertions for every workload: restricted security context, probes on the
    ops port, PodDisruptionBudget, default-deny NetworkPolicy with the role's allows, L4
    Services with externalTrafficPolicy Local, state on a PersistentVolume, checksum only of the
    configuration, memory from the documented formula — each assertion also shown failing on
    a manifest broken on purpose;
  - the alert rules pass `promtool check rules`;
  - the node's KafkaTopics and KafkaUser ACLs in polder-kafka are exactly what `polder-node
    --print_kafka_needs` derives from the rendered node configuration;
  - the values schemas refuse unknown keys and malformed values, naming them.
Writes one JUnit case per check to $XML_OUTPUT_FILE.
"""

import copy
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import jsonschema
import yaml

import junit

SRC = os.environ.get("TEST_SRCDIR", "")
WS = os.path.join(SRC, os.environ.get("TEST_WORKSPACE", "polder")) if SRC else os.getcwd()
CHARTS = os.path.join(WS, "k8s", "charts")
VALUES = os.path.join(WS, "k8s", "values")
CRDS = os.path.join(WS, "third_party", "k8s-crds")
NODE = os.path.join(WS, "services", "node", "polder-node")
BINARIES = {"polder-registry": os.path.join(WS, "services", "registry", "polder-registry"),
            "polder-aggregator": os.path.join(WS, "services", "aggregator", "polder-aggregator")}
TMP = os.environ.get("TEST_TMPDIR", tempfile.mkdtemp())
PY = sys.executable


def tool(name):
    home = os.environ.get("POLDER_GO_TOOLS", "")
    path = os.path.join(home, name)
    if not home or not os.access(path, os.X_OK):
        raise RuntimeError(f"{name} not found in POLDER_GO_TOOLS ({home!r}); run tools/setup/setup.sh")
    return path


HELM = None
CASES = junit.Cases("ChartsTest")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def run(cmd, ok=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if ok and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def charts():
    return sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(CHARTS, "*", "Chart.yaml")))


def organisations():
    return sorted(d for d in os.listdir(VALUES) if os.path.isdir(os.path.join(VALUES, d)))


def pairs():
    out = []
    for org in organisations():
        for chart in charts():
            f = os.path.join(VALUES, org, f"{chart}.yaml")
            if os.path.exists(f):
                out.append((org, chart, f))
    return out


RENDERED = {}


def render(org, chart, values_file, extra=()):
    p = run([HELM, "template", f"{org}-{chart.replace('polder-', '')}", os.path.join(CHARTS, chart),
             "--namespace", f"polder-{org}", "-f", values_file, *extra])
    return [d for d in yaml.safe_load_all(p.stdout) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


# ---- lint, template, generated files -------------------------------------------------------

def test_every_chart_has_values_for_the_organisations_and_its_files():
    for chart in charts():
        for f in ("values.yaml", "values.schema.json", "README.md", "templates/NOTES.txt"):
            check(os.path.exists(os.path.join(CHARTS, chart, f)), f"{chart}: {f} missing")
    check(set(charts()) == {"polder-node", "polder-registry", "polder-aggregator", "polder-kafka"},
          f"charts: {charts()}")
    for org in ("national", "groningen", "amersfoort", "enschede"):
        check(os.path.isdir(os.path.join(VALUES, org)), f"k8s/values/{org} missing")
    # Every city runs a node and a Kafka; the national operator also the registry and aggregator.
    have = {(o, c) for o, c, _ in pairs()}
    for org in ("groningen", "amersfoort", "enschede", "national"):
        check((org, "polder-node") in have and (org, "polder-kafka") in have, f"{org}: node/kafka values")
    check(("national", "polder-registry") in have and ("national", "polder-aggregator") in have,
          "national: registry/aggregator values")


def test_generated_files_are_current():
    for what in ("schemas", "readme"):
        run([PY, os.path.join(WS, "tools", "k8s", "charts.py"), what, "--check"])


def test_helm_lint_strict_and_template():
    for org, chart, f in pairs():
        p = run([HELM, "lint", "--strict", os.path.join(CHARTS, chart), "-f", f, "--namespace", f"polder-{org}"], ok=False)
        check(p.returncode == 0 and "0 chart(s) failed" in p.stdout, f"lint {chart} {org}:\n{p.stdout}\n{p.stderr}")
        RENDERED[(org, chart)] = render(org, chart, f)
        check(RENDERED[(org, chart)], f"{chart} {org}: nothing rendered")


# ---- validation -----------------------------------------------------------------------------

def kube_versions():
    lows = set()
    for chart in charts():
        with open(os.path.join(CHARTS, chart, "Chart.yaml")) as f:
            kv = yaml.safe_load(f)["kubeVersion"]
        m = re.match(r"^>=\s*(\d+)\.(\d+)\.(\d+)", kv)
        check(m, f"{chart}: kubeVersion {kv!r} has no lower bound")
        lows.add(f"{m.group(1)}.{m.group(2)}.0")
    check(len(lows) == 1, f"the charts claim different lowest versions: {lows}")
    import kubernetes_validate.utils as kvu
    highest = max(kvu.all_versions(), key=lambda v: tuple(int(x) for x in v.split(".")))
    return [lows.pop(), highest]


CUSTOM = {}
CRD_GROUPS = set()


def load_crds():
    for path in glob.glob(os.path.join(CRDS, "**", "*.yaml"), recursive=True):
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if not d or d.get("kind") != "CustomResourceDefinition":
                    continue
                group = d["spec"]["group"]
                CRD_GROUPS.add(group)
                for v in d["spec"]["versions"]:
                    if v.get("served"):
                        CUSTOM[(f"{group}/{v['name']}", d["spec"]["names"]["kind"])] = v["schema"]["openAPIV3Schema"]


def test_builtin_resources_pass_kubernetes_validate_strict():
    versions = kube_versions()
    check(versions[0] == "1.30.0" and versions[1].startswith("1.3"), f"versions {versions}")
    for (org, chart), docs in sorted(RENDERED.items()):
        builtin = [d for d in docs if (d["apiVersion"], d["kind"]) not in CUSTOM]
        path = os.path.join(TMP, f"{org}-{chart}-builtin.yaml")
        with open(path, "w") as f:
            yaml.safe_dump_all(builtin, f)
        for v in versions:
            p = run([PY, "-m", "kubernetes_validate", "--strict", "-k", v, path], ok=False)
            passed = p.stdout.count(" passed for resource ")
            check(p.returncode == 0 and "ERROR" not in p.stdout + p.stderr and passed == len(builtin),
                  f"{chart} {org} @ {v}: {passed}/{len(builtin)} passed\n{p.stdout}\n{p.stderr}")


def strip_k8s_extensions(schema):
    """The CRD schema as JSON Schema: Kubernetes' int-or-string and preserve-unknown-fields."""
    if isinstance(schema, dict):
        s = {k: strip_k8s_extensions(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
        if schema.get("x-kubernetes-int-or-string"):
            s.pop("type", None)
            s["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if schema.get("type") == "object" and "properties" in s and not schema.get("x-kubernetes-preserve-unknown-fields") \
                and "additionalProperties" not in s:
            s["additionalProperties"] = False  # the API server prunes unknown fields; we refuse them
        return s
    if isinstance(schema, list):
        return [strip_k8s_extensions(x) for x in schema]
    return schema


def crd_errors(doc):
    schema = CUSTOM.get((doc["apiVersion"], doc["kind"]))
    if schema is None:
        return [f"no served CRD version for {doc['apiVersion']} {doc['kind']}"]
    s = strip_k8s_extensions(schema)
    # metadata is the API server's, not the CRD's.
    s.setdefault("properties", {})["metadata"] = {"type": "object"}
    v = jsonschema.Draft7Validator(s)
    return [f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in v.iter_errors(doc)]


def test_custom_resources_pass_their_crd_schemas():
    seen = set()
    for (org, chart), docs in sorted(RENDERED.items()):
        for d in docs:
            if d["apiVersion"].split("/")[0] in CRD_GROUPS:
                errs = crd_errors(d)
                check(not errs, f"{chart} {org} {d['kind']}/{d['metadata']['name']}:\n" + "\n".join(errs))
                seen.add(d["kind"])
    want = {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Certificate", "Issuer",
            "ServiceMonitor", "PrometheusRule"}
    check(want <= seen, f"custom resources never rendered: {want - seen}")
    # The check can fail: a misspelt field and a wrong type are caught.
    kafka = copy.deepcopy(by_kind(RENDERED[("groningen", "polder-kafka")], "Kafka")[0])
    kafka["spec"]["kafka"]["listners"] = kafka["spec"]["kafka"].pop("listeners")
    check(crd_errors(kafka), "a Kafka without listeners passed")
    topic = copy.deepcopy(by_kind(RENDERED[("groningen", "polder-kafka")], "KafkaTopic")[0])
    topic["spec"]["partitions"] = "six"
    check(crd_errors(topic), "a KafkaTopic with partitions 'six' passed")
    old = copy.deepcopy(topic)
    old["apiVersion"] = "kafka.strimzi.io/v1beta2"
    check(crd_errors(old), "kafka.strimzi.io/v1beta2 (removed in Strimzi 1.0) passed")


# ---- value -> manifest assertions -------------------------------------------------------------

OPS_PORTS = {"polder-node": 9464, "polder-registry": 9465, "polder-aggregator": 9467}


def workload_problems(chart, docs):
    """What is wrong with a role's workload; [] when it is as ADR 0022 §4 requires."""
    out = []
    sts = by_kind(docs, "StatefulSet")
    if len(sts) != 1:
        return [f"{len(sts)} StatefulSets"]
    s = sts[0]
    pod = s["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        out.append("pod runAsNonRoot")
    if psc.get("runAsUser") != 65532 or psc.get("fsGroup") != 65532:
        out.append("pod runAsUser/fsGroup 65532")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        out.append("pod seccompProfile RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        out.append("service account token mounted")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        out.append("host namespaces")
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            out.append(f"{c['name']}: readOnlyRootFilesystem")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{c['name']}: allowPrivilegeEscalation")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            out.append(f"{c['name']}: capabilities drop ALL, add none")
        if sc.get("privileged"):
            out.append(f"{c['name']}: privileged")
        if sc.get("runAsNonRoot") is not True:
            out.append(f"{c['name']}: runAsNonRoot")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        if ports.get("ops") != OPS_PORTS[chart]:
            out.append(f"{c['name']}: ops port {ports.get('ops')}")
        for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/livez")):
            g = c.get(probe, {}).get("httpGet", {})
            if g.get("path") != path or g.get("port") not in ("ops", OPS_PORTS[chart]):
                out.append(f"{c['name']}: {probe} {g}")
        lim = c.get("resources", {}).get("limits", {})
        req = c.get("resources", {}).get("requests", {})
        if "memory" not in lim or "memory" not in req:
            out.append(f"{c['name']}: memory request and limit")
        if "cpu" in lim and chart != "custom-cpu":
            out.append(f"{c['name']}: a CPU limit by default")
    # State on a PersistentVolume (node, aggregator), never an emptyDir; scratch only in /tmp.
    for v in pod.get("volumes", []):
        if "emptyDir" in v and v["name"] != "tmp":
            out.append(f"emptyDir volume {v['name']}")
        if "hostPath" in v:
            out.append(f"hostPath volume {v['name']}")
    if chart in ("polder-node", "polder-aggregator"):
        claims = [t["metadata"]["name"] for t in s["spec"].get("volumeClaimTemplates", [])]
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        if "state" not in claims or mounts.get("/var/lib/polder") != "state":
            out.append("state_dir not on the per-replica PersistentVolume")
    # Checksums: the configuration only (rotation needs no restart).
    ann = s["spec"]["template"]["metadata"].get("annotations", {})
    sums = [k for k in ann if k.startswith("checksum/")]
    if sums != ["checksum/config"]:
        out.append(f"checksum annotations {sums}")
    # Replicas fit ADR 0021: parallel start, rolling update, spread over zones and hosts.
    if s["spec"].get("podManagementPolicy") != "Parallel":
        out.append("podManagementPolicy")
    if s["spec"].get("updateStrategy", {}).get("type") != "RollingUpdate":
        out.append("updateStrategy")
    keys = {t["topologyKey"] for t in pod.get("topologySpreadConstraints", [])}
    if keys != {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}:
        out.append(f"topologySpreadConstraints {keys}")
    selector = s["spec"]["selector"]["matchLabels"]
    pdbs = [p for p in by_kind(docs, "PodDisruptionBudget") if p["spec"]["selector"]["matchLabels"] == selector]
    if len(pdbs) != 1 or pdbs[0]["spec"].get("maxUnavailable") != 1:
        out.append("PodDisruptionBudget maxUnavailable 1 over the pods")
    # Services in front of listeners with per-source limits: L4, the client's address kept.
    for svc in by_kind(docs, "Service"):
        if svc["spec"].get("clusterIP") == "None":
            continue
        if svc["spec"].get("type") not in ("LoadBalancer", "NodePort") or svc["spec"].get("externalTrafficPolicy") != "Local":
            out.append(f"Service {svc['metadata']['name']}: not L4 with externalTrafficPolicy Local")
    out += network_policy_problems(chart, docs, selector)
    return out


def rule_allows(rule, port):
    ports = rule.get("ports")
    return ports is None or any(p.get("port") == port for p in ports)


def network_policy_problems(chart, docs, selector):
    out = []
    nps = [n for n in by_kind(docs, "NetworkPolicy") if n["spec"]["podSelector"].get("matchLabels") == selector]
    if len(nps) != 1:
        return [f"{len(nps)} NetworkPolicies over the pods"]
    np = nps[0]["spec"]
    if sorted(np.get("policyTypes", [])) != ["Egress", "Ingress"]:
        out.append("NetworkPolicy is not default-deny both ways")
    ingress, egress = np.get("ingress", []), np.get("egress", [])
    # Only the ports the role serves are open; the ops port only to the scraper.
    allowed = {p["port"] for r in ingress for p in r.get("ports", [])}
    if any("ports" not in r for r in ingress):
        out.append("an ingress rule without ports")
    want = {"polder-node": {7443, 8443, 8081, 7445, 7444, 9464},
            "polder-registry": {7443, 8081, 9465},
            "polder-aggregator": {8444, 9467}}[chart]
    if allowed != want:
        out.append(f"ingress ports {sorted(allowed)}, expected {sorted(want)}")
    for r in ingress:
        if rule_allows(r, OPS_PORTS[chart]) and (not r.get("from") or any("ipBlock" in f for f in r["from"])):
            out.append("the ops port is open beyond the scraper")
    if chart == "polder-node":
        internal = [r for r in ingress if rule_allows(r, 7444)]
        if not internal or any(f.get("podSelector", {}).get("matchLabels") != selector for r in internal for f in r.get("from", [{}])):
            out.append("the internal port is open beyond the release's pods")
    if not any(rule_allows(r, 53) for r in egress):
        out.append("no DNS egress")
    return out


def test_workloads_meet_the_restricted_profile_probes_pdb_and_network_policy():
    n = 0
    for (org, chart), docs in sorted(RENDERED.items()):
        if chart == "polder-kafka":
            continue
        problems = workload_problems(chart, docs)
        check(not problems, f"{chart} {org}: {problems}")
        n += 1
    check(n >= 6, f"only {n} workloads checked")


def test_the_assertions_fail_on_broken_manifests():
    good = RENDERED[("groningen", "polder-node")]
    breaks = {
        "readOnlyRootFilesystem": lambda s: s["spec"]["template"]["spec"]["containers"][0]["securityContext"].pop("readOnlyRootFilesystem"),
        "capabilities": lambda s: s["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
        "runAsNonRoot": lambda s: s["spec"]["template"]["spec"]["securityContext"].update(runAsNonRoot=False),
        "seccompProfile": lambda s: s["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile"),
        "livenessProbe": lambda s: s["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"].update(path="/readyz"),
        "readinessProbe": lambda s: s["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe"),
        "emptyDir": lambda s: s["spec"]["template"]["spec"]["volumes"].append({"name": "state2", "emptyDir": {}}),
        "checksum": lambda s: s["spec"]["template"]["metadata"]["annotations"].update({"checksum/identity": "x"}),
        "cpu limit": lambda s: s["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].update(cpu="1"),
    }
    for what, brk in breaks.items():
        docs = copy.deepcopy(good)
        brk(by_kind(docs, "StatefulSet")[0])
        check(workload_problems("polder-node", docs), f"breaking {what} went unnoticed")
    for what, brk in {
        "pdb": lambda d: by_kind(d, "PodDisruptionBudget")[0]["spec"].update(maxUnavailable=2),
        "egress open": lambda d: by_kind(d, "NetworkPolicy")[0]["spec"].update(policyTypes=["Ingress"]),
        "ops open": lambda d: by_kind(d, "NetworkPolicy")[0]["spec"]["ingress"].append({"ports": [{"port": 9464}], "from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}),
        "etp": lambda d: [s["spec"].update(externalTrafficPolicy="Cluster") for s in by_kind(d, "Service") if s["spec"].get("type")],
    }.items():
        docs = copy.deepcopy(good)
        brk(docs)
        check(workload_problems("polder-node", docs), f"breaking {what} went unnoticed")


def quantity_mib(q):
    m = re.match(r"^(\d+)Mi$", q)
    check(m, f"memory {q!r} is not in Mi")
    return int(m.group(1))


def test_node_memory_follows_the_documented_formula():
    for (org, chart), docs in sorted(RENDERED.items()):
        if chart != "polder-node":
            continue
        with open(os.path.join(VALUES, org, "polder-node.yaml")) as f:
            over = yaml.safe_load(f)
        with open(os.path.join(CHARTS, chart, "values.yaml")) as f:
            v = yaml.safe_load(f)

        def merge(a, b):
            for k, x in b.items():
                a[k] = merge(a.get(k, {}), x) if isinstance(x, dict) and isinstance(a.get(k), dict) else x
            return a
        v = merge(v, over)
        mib = 1 << 20
        fed = v["federation"]
        b = 256 * mib + 2 * v["ingest"]["limits"]["maxInflightBytes"]
        b += len(v["datasets"]) * (fed["limits"]["fanoutTailBytes"] + 3 * fed["limits"]["sourcePrefetchBytes"])
        if fed["enabled"]:
            b += fed["limits"]["fanoutMaxCatchupReaders"] * 3 * fed["limits"]["sourcePrefetchBytes"]
            b += len(fed["subscriptions"]) * (2 * fed["limits"]["maxBatchBytes"] + 8 * mib)
        req = -(-b // mib)
        res = by_kind(docs, "StatefulSet")[0]["spec"]["template"]["spec"]["containers"][0]["resources"]
        check(quantity_mib(res["requests"]["memory"]) == req, f"{org}: request {res['requests']['memory']}, formula {req}Mi")
        check(quantity_mib(res["limits"]["memory"]) == -(-req * 5 // 4), f"{org}: limit {res['limits']['memory']}")


def test_alert_rules_pass_promtool():
    n = 0
    for (org, chart), docs in sorted(RENDERED.items()):
        for rule in by_kind(docs, "PrometheusRule"):
            path = os.path.join(TMP, f"{org}-{chart}-rules.yaml")
            with open(path, "w") as f:
                yaml.safe_dump(rule["spec"], f)
            p = run(["promtool", "check", "rules", path], ok=False)
            check(p.returncode == 0 and "SUCCESS" in p.stdout + p.stderr, f"{chart} {org}:\n{p.stdout}\n{p.stderr}")
            n += 1
    check(n >= 2, f"only {n} rule sets")
    bad = os.path.join(TMP, "bad-rules.yaml")
    with open(bad, "w") as f:
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"alert": "X", "expr": "up ==== 0"}]}]}, f)
    check(run(["promtool", "check", "rules", bad], ok=False).returncode != 0, "promtool passed a broken rule")


# ---- the node and its Kafka agree ------------------------------------------------------------

def node_needs(org):
    cm = by_kind(RENDERED[(org, "polder-node")], "ConfigMap")[0]
    path = os.path.join(TMP, f"{org}-node.yaml")
    with open(path, "w") as f:
        f.write(cm["data"]["node.yaml"])
    p = run([NODE, "--config", path, "--print_kafka_needs"])
    return json.loads(p.stdout)


def test_kafka_topics_and_acls_are_what_the_node_derives():
    checked = 0
    for org in organisations():
        if (org, "polder-node") not in RENDERED or (org, "polder-kafka") not in RENDERED:
            continue
        needs = node_needs(org)
        kdocs = RENDERED[(org, "polder-kafka")]
        topics = {t["spec"]["topicName"]: t for t in by_kind(kdocs, "KafkaTopic")}
        keep = {t["spec"]["topicName"] for t in by_kind(kdocs, "KafkaTopic")
                if t["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep"}
        node_user = [u for u in by_kind(kdocs, "KafkaUser") if u["metadata"]["name"].endswith("-node")]
        check(len(node_user) == 1, f"{org}: node KafkaUser")
        acls = node_user[0]["spec"]["authorization"]["acls"]

        def granted(rtype, name, op):
            for a in acls:
                r = a["resource"]
                if r["type"] != rtype or op not in a["operations"]:
                    continue
                if (r.get("patternType", "literal") == "literal" and r["name"] == name) or \
                        (r.get("patternType") == "prefix" and name.startswith(r["name"])):
                    return True
            return False
        wanted_by_operator = set()
        for t in needs["topics"]:
            if t["created_by"] == "node":
                check(granted("topic", t["name"], "Create") and granted("topic", t["name"], "Write"),
                      f"{org}: the node cannot create its mirror {t['name']}")
                check(t["name"] not in topics, f"{org}: mirror {t['name']} has a KafkaTopic")
                continue
            wanted_by_operator.add(t["name"])
            k = topics.get(t["name"])
            check(k is not None, f"{org}: no KafkaTopic for {t['name']}")
            check(k["spec"]["partitions"] == t["partitions"], f"{org} {t['name']}: partitions {k['spec']['partitions']} != {t['partitions']}")
            check(k["spec"]["replicas"] == t["replication_factor"], f"{org} {t['name']}: replicas")
            check({x: str(y) for x, y in k["spec"]["config"].items()} == t["configs"],
                  f"{org} {t['name']}: config {k['spec']['config']} != {t['configs']}")
            for op in ("Describe", "DescribeConfigs", "Read", "Write"):
                check(granted("topic", t["name"], op), f"{org}: {op} on {t['name']} not granted")
        others = {a["resource"]["name"] for u in by_kind(kdocs, "KafkaUser") if u is not node_user[0]
                  for a in u["spec"]["authorization"]["acls"] if a["resource"]["type"] == "topic"}
        extra = set(topics) - wanted_by_operator - others
        check(not extra, f"{org}: KafkaTopics the node does not use: {extra}")
        for name in ("_polder.audit", "_polder.ingest-keys.v2"):
            if name in wanted_by_operator:
                check(name in keep, f"{org}: {name} lacks helm.sh/resource-policy: keep")
        kafka = by_kind(kdocs, "Kafka")[0]
        check(kafka["metadata"]["annotations"].get("helm.sh/resource-policy") == "keep", f"{org}: the Kafka is not kept")
        # Transactional ids and groups: exactly the node's.
        tids = {(a["resource"]["name"], a["resource"].get("patternType", "literal")) for a in acls if a["resource"]["type"] == "transactionalId"}
        want = {(t, "literal") for t in needs["transactional_ids"]} | {(p, "prefix") for p in needs["transactional_id_prefixes"]}
        check(tids == want, f"{org}: transactional ids {sorted(tids)} != {sorted(want)}")
        groups = {a["resource"]["name"] for a in acls if a["resource"]["type"] == "group"}
        check(groups == set(needs["groups"]), f"{org}: groups {groups} != {needs['groups']}")
        # Topic grants: only the node's topics and mirror prefixes.
        for a in acls:
            r = a["resource"]
            if r["type"] != "topic":
                continue
            if r.get("patternType") == "prefix":
                check(any(t["created_by"] == "node" and t["name"].startswith(r["name"]) for t in needs["topics"]),
                      f"{org}: prefix grant {r['name']} matches no mirror")
            else:
                check(r["name"] in wanted_by_operator, f"{org}: grant on {r['name']}, not a node topic")
        checked += 1
    check(checked == 4, f"{checked} organisations compared")


def config_of(org, chart):
    cm = by_kind(RENDERED[(org, chart)], "ConfigMap")[0]
    (name, text), = cm["data"].items()
    path = os.path.join(TMP, f"{org}-{name}")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_rendered_configurations_are_accepted_by_the_services():
    n = 0
    for (org, chart) in sorted(RENDERED):
        if chart == "polder-kafka":
            continue
        path = config_of(org, chart)
        if chart == "polder-node":
            run([NODE, "--config", path, "--print_kafka_needs"])
        else:
            p = run([BINARIES[chart], "--config", path, "--check_config", "--replica_id", "x-0"] if chart == "polder-registry"
                    else [BINARIES[chart], "--config", path, "--check_config"])
            check(p.stdout.strip() == "ok", f"{chart} {org}: {p.stdout}")
        n += 1
    check(n == 6, f"{n} configurations checked")
    # The check can fail: a configuration with an unknown key is refused, naming it.
    path = config_of("national", "polder-aggregator")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("  api_address:", "  api_adress:", 1))
    p = run([BINARIES["polder-aggregator"], "--config", path, "--check_config"], ok=False)
    check(p.returncode == 2 and "api_adress" in p.stderr, f"a misspelt key passed: {p.stdout} {p.stderr}")


def test_national_views_accept_the_cities_definitions():
    agg = yaml.safe_load(open(config_of("national", "polder-aggregator")))
    views = agg["national"]["views"]
    check(views, "no national view")
    hashes = {}
    for org in organisations():
        if (org, "polder-node") in RENDERED:
            p = run([NODE, "--config", config_of(org, "polder-node"), "--print_view_definitions"])
            for d in json.loads(p.stdout):
                hashes[(org, d["dataset"], d["view"])] = d["definition_hash"]
    for v in views:
        for city in v["cities"]:
            h = hashes.get((city, v["dataset"], v["view"]))
            check(h is not None, f"{city} computes no view {v['dataset']}/{v['view']}")
            check(h in v["definition_hashes"], f"{city}'s {v['view']} is {h}, not in {v['definition_hashes']}")
        # The national node mirrors each city's view.
        subs = yaml.safe_load(open(config_of("national", "polder-node")))["federation"]["subscriptions"]
        for city in v["cities"]:
            check(any(s["provider"] == city and s.get("view") == v["view"] for s in subs), f"national does not mirror {city}'s {v['view']}")


# ---- the schemas refuse mistakes -------------------------------------------------------------

def test_values_schemas_refuse_unknown_keys_and_malformed_values():
    f = os.path.join(VALUES, "groningen", "polder-node.yaml")
    for extra, expect in ((["--set", "replicaCount=two"], "replicaCount"),
                          (["--set", "peerId=Groningen"], "peerId"),
                          (["--set", "ingest.limit.maxBatchBytes=1"], "limit"),
                          (["--set", "service.ingest.type=ExternalName"], "type"),
                          (["--set", "datasets[0].id=bikes"], "id")):
        p = run([HELM, "template", "x", os.path.join(CHARTS, "polder-node"), "-f", f, *extra], ok=False)
        check(p.returncode != 0 and expect in p.stderr, f"{extra}: accepted or unnamed:\n{p.stderr}")
    p = run([HELM, "template", "x", os.path.join(CHARTS, "polder-kafka"), "-f",
             os.path.join(VALUES, "groningen", "polder-kafka.yaml"), "--set", "cluster.kafkaVersion=3.9.0"], ok=False)
    check(p.returncode != 0 and "kafkaVersion" in p.stderr, f"Kafka 3.9 (ZooKeeper) accepted:\n{p.stderr}")


def test_cert_manager_issues_what_it_suits_and_never_a_federation_identity():
    for (org, chart), docs in sorted(RENDERED.items()):
        certs = by_kind(docs, "Certificate")
        sts = by_kind(docs, "StatefulSet")
        if not sts:
            continue
        pod = sts[0]["spec"]["template"]["spec"]
        identity = [v["secret"]["secretName"] for v in pod["volumes"] if v["name"] == "identity"][0]
        check(all(c["spec"]["secretName"] != identity for c in certs),
              f"{chart} {org}: cert-manager issues the federation identity (its key is pinned)")
        if chart != "polder-node":
            continue
        peer = yaml.safe_load(by_kind(docs, "ConfigMap")[0]["data"]["node.yaml"])["node"]["peer_id"]
        replica = [c for c in certs if c["metadata"]["name"].endswith("-replica-tls")]
        check(len(replica) == 1, f"{org}: the replicas' certificate")
        check(replica[0]["spec"]["uris"] == [f"spiffe://{peer}-replicas/peer/replica"], f"{org}: {replica[0]['spec']}")
        issuer = replica[0]["spec"]["issuerRef"]
        check(issuer["kind"] == "Issuer" and issuer["name"].endswith("-replicas"), f"{org}: replicas issued by {issuer}")
        ca_issuers = [i for i in by_kind(docs, "Issuer") if i["metadata"]["name"] == issuer["name"]]
        check(ca_issuers and ca_issuers[0]["spec"]["ca"]["secretName"].endswith("-replica-ca"), f"{org}: the release's own CA")
        config = yaml.safe_load(by_kind(docs, "ConfigMap")[0]["data"]["node.yaml"])
        check(config["replicas"].get("ca_file") == "/etc/polder/replica/ca.crt", f"{org}: the node does not use it")
        # The ingest CA keeps its key (gateway certificates chain to it); servers rotate theirs.
        for c in certs:
            if c["spec"].get("isCA") and c["metadata"]["name"].endswith("-ingest-ca"):
                check(c["spec"]["privateKey"].get("rotationPolicy") == "Never", f"{org}: the ingest CA rotates its key")
                check(c["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep", f"{org}: ingest CA not kept")


def test_a_proxy_in_front_turns_per_source_limits_off_explicitly():
    f = os.path.join(VALUES, "groningen", "polder-node.yaml")
    chart = os.path.join(CHARTS, "polder-node")
    p = run([HELM, "template", "x", chart, "-f", f, "--set", "service.ingest.type=ClusterIP"], ok=False)
    check(p.returncode != 0 and "perSourceLimits" in p.stderr, f"a ClusterIP ingest kept per-source limits:\n{p.stderr}")
    docs = [d for d in yaml.safe_load_all(run([HELM, "template", "x", chart, "-f", f, "--set", "service.ingest.type=ClusterIP",
                                                "--set", "service.ingest.perSourceLimits=false"]).stdout) if d]
    ingest = [s for s in by_kind(docs, "Service") if s["metadata"]["name"].endswith("-ingest")][0]
    check(ingest["spec"]["type"] == "ClusterIP" and "externalTrafficPolicy" not in ingest["spec"], f"{ingest['spec']}")
    node = yaml.safe_load(by_kind(docs, "ConfigMap")[0]["data"]["node.yaml"])["node"]
    check(node["http_per_source_limits"] is False and node["schema_per_source_limits"] is False, f"{node}")
    fed = [s for s in by_kind(docs, "Service") if s["metadata"]["name"].endswith("-federation")][0]
    check(fed["spec"].get("externalTrafficPolicy") == "Local", "the federation Service lost its client addresses")
    # The default keeps them on, in every organisation's rendering.
    for (org, chart_name), rendered in RENDERED.items():
        for cm in by_kind(rendered, "ConfigMap"):
            for text in cm["data"].values():
                check("per_source_limits: false" not in text, f"{chart_name} {org}: per-source limits off")
    for chart_name, key in (("polder-registry", "http_per_source_limits"), ("polder-aggregator", "api_per_source_limits")):
        vf = os.path.join(VALUES, "national", f"{chart_name}.yaml")
        docs = [d for d in yaml.safe_load_all(run([HELM, "template", "x", os.path.join(CHARTS, chart_name), "-f", vf,
                                                    "--set", "service.type=ClusterIP", "--set", "service.perSourceLimits=false"]).stdout) if d]
        check(f"{key}: false" in list(by_kind(docs, "ConfigMap")[0]["data"].values())[0], f"{chart_name}: {key}")


def main():
    global HELM
    HELM = tool("helm")
    load_crds()
    for fn in (test_every_chart_has_values_for_the_organisations_and_its_files,
               test_generated_files_are_current,
               test_helm_lint_strict_and_template,
               test_builtin_resources_pass_kubernetes_validate_strict,
               test_custom_resources_pass_their_crd_schemas,
               test_workloads_meet_the_restricted_profile_probes_pdb_and_network_policy,
               test_the_assertions_fail_on_broken_manifests,
               test_node_memory_follows_the_documented_formula,
               test_alert_rules_pass_promtool,
               test_kafka_topics_and_acls_are_what_the_node_derives,
               test_rendered_configurations_are_accepted_by_the_services,
               test_national_views_accept_the_cities_definitions,
               test_a_proxy_in_front_turns_per_source_limits_off_explicitly,
               test_cert_manager_issues_what_it_suits_and_never_a_federation_identity,
               test_values_schemas_refuse_unknown_keys_and_malformed_values):
        CASES.run(fn.__name__, fn)
    return CASES.finish(expected=15)


if __name__ == "__main__":
    sys.exit(main())
