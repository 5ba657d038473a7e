#!/usr/bin/env python3
"""The charts against a real Kubernetes API server (ADR 0022 §6; `./test.sh --k8s` only).

etcd and kube-apiserver (tools/k8s/apiserver.sh: built from the Go module proxy, cached) on
loopback; the vendored CRDs applied (Strimzi, cert-manager, Prometheus Operator); for every
organisation a namespace labelled pod-security.kubernetes.io/enforce=restricted and
warn=restricted; `helm install --dry-run=server` of every chart with every organisation's
values (the server validates every object, custom resources against their CRDs, and helm checks
kubeVersion against the server's); and because Pod Security admission judges Pods, not
StatefulSets, a Pod made from every workload's pod template is created with dryRun=All in that
namespace and must be admitted with no warning. A deliberately non-compliant Pod must be
refused, so the check can fail. Writes one JUnit case per check to $XML_OUTPUT_FILE.
"""

import copy
import glob
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import yaml

import junit

SRC = os.environ.get("TEST_SRCDIR", "")
WS = os.path.join(SRC, os.environ.get("TEST_WORKSPACE", "polder")) if SRC else os.getcwd()
CHARTS = os.path.join(WS, "k8s", "charts")
VALUES = os.path.join(WS, "k8s", "values")
CRDS = os.path.join(WS, "third_party", "k8s-crds")
SCRIPT = os.path.join(WS, "tools", "k8s", "apiserver.sh")
HELM = os.path.join(os.environ.get("POLDER_GO_TOOLS", ""), "helm")
CASES = junit.Cases("ApiServerTest")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class Api:
    def __init__(self, env):
        self.url = env["APISERVER_URL"]
        self.token = env["APISERVER_TOKEN"]
        self.ctx = ssl.create_default_context(cafile=env["APISERVER_CA"]) if env.get("APISERVER_CA") else ssl._create_unverified_context()

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}"), r.headers.get_all("Warning") or []
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}"), e.headers.get_all("Warning") or []


def pairs():
    out = []
    for org in sorted(os.listdir(VALUES)):
        for f in sorted(glob.glob(os.path.join(VALUES, org, "*.yaml"))):
            out.append((org, os.path.basename(f)[:-5], f))
    return out


def main():
    work = tempfile.mkdtemp(prefix="k8s-tier.", dir=os.environ.get("TEST_TMPDIR"))
    run_dir = os.path.join(work, "server")
    t0 = time.time()
    b = subprocess.run(["bash", SCRIPT, "build"], capture_output=True, text=True)
    built = time.time() - t0
    print(f"tier build: {built:.1f} s ({'cached' if 'present in' in b.stderr else 'built'})", flush=True)
    if b.returncode != 0:
        print(b.stdout, b.stderr)
        return 1
    t1 = time.time()
    s = subprocess.run(["bash", SCRIPT, "start", run_dir], capture_output=True, text=True)
    if s.returncode != 0:
        print(s.stdout, s.stderr)
        return 1
    print(f"etcd + kube-apiserver ready in {time.time() - t1:.1f} s", flush=True)
    try:
        env = {}
        for line in open(os.path.join(run_dir, "env")):
            line = line.strip().removeprefix("export ")
            if "=" in line:
                k, v = line.split("=", 1)
                env[k] = v.strip("'\"")
        api = Api(env)
        kubeconfig = env["KUBECONFIG"]
        namespaces = {}

        def version():
            st, v, _ = api.call("GET", "/version")
            check(st == 200 and v["gitVersion"] == "v1.37.2", f"{st} {v}")

        def crds():
            names = []
            for path in sorted(glob.glob(os.path.join(CRDS, "**", "*.yaml"), recursive=True)):
                for d in yaml.safe_load_all(open(path)):
                    if d and d.get("kind") == "CustomResourceDefinition":
                        st, r, _ = api.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", d)
                        check(st in (201, 409), f"{d['metadata']['name']}: {st} {r.get('message')}")
                        names.append(d["metadata"]["name"])
            deadline = time.time() + 60
            for name in names:
                while True:
                    st, r, _ = api.call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                    est = [c for c in r.get("status", {}).get("conditions", []) if c["type"] == "Established"]
                    if est and est[0]["status"] == "True":
                        break
                    check(time.time() < deadline, f"{name} not established")
                    time.sleep(0.5)
            check(len(names) == 8, f"{len(names)} CRDs")

        def restricted_namespaces():
            for org, _, _ in pairs():
                if org in namespaces:
                    continue
                ns = f"polder-{org}"
                st, r, _ = api.call("POST", "/api/v1/namespaces", {
                    "apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/enforce-version": "latest",
                        "pod-security.kubernetes.io/warn": "restricted",
                        "pod-security.kubernetes.io/warn-version": "latest"}}})
                check(st == 201, f"{ns}: {st} {r.get('message')}")
                namespaces[org] = ns

        def helm_installs():
            for org, chart, f in pairs():
                p = subprocess.run([HELM, "install", f"{org}-{chart.replace('polder-', '')}", os.path.join(CHARTS, chart),
                                    "-n", namespaces[org], "-f", f, "--dry-run=server", "--kubeconfig", kubeconfig],
                                   capture_output=True, text=True)
                check(p.returncode == 0, f"{chart} {org}: {p.stderr}")
                check("warning" not in p.stderr.lower(), f"{chart} {org}: {p.stderr}")
                print(f"  helm install --dry-run=server {chart} ({org}): ok", flush=True)

        def pods_admitted():
            n = 0
            for org, chart, f in pairs():
                out = subprocess.run([HELM, "template", f"{org}-x", os.path.join(CHARTS, chart), "-n", namespaces[org], "-f", f],
                                     capture_output=True, text=True, check=True).stdout
                docs = [d for d in yaml.safe_load_all(out) if d]
                for sa in (d for d in docs if d["kind"] == "ServiceAccount"):
                    st, r, _ = api.call("POST", f"/api/v1/namespaces/{namespaces[org]}/serviceaccounts", sa)
                    check(st in (201, 409), f"{sa['metadata']['name']}: {st} {r.get('message')}")
                for w in (d for d in docs if d["kind"] in ("StatefulSet", "Deployment", "DaemonSet", "Job")):
                    pod = pod_of(w, namespaces[org])
                    st, r, warnings = api.call("POST", f"/api/v1/namespaces/{namespaces[org]}/pods?dryRun=All", pod)
                    check(st == 201, f"{chart} {org} {w['metadata']['name']}: {st} {r.get('message')}")
                    check(not warnings, f"{chart} {org}: warnings {warnings}")
                    n += 1
            global FIXTURE
            FIXTURE = pod
            # The node in each of four organisations, the registry, the aggregator.
            check(n == 6, f"{n} workloads")
            print(f"  {n} workloads' pods admitted under enforce=restricted, no warning", flush=True)

        def noncompliant_refused():
            ns = FIXTURE["metadata"]["namespace"]
            bad = copy.deepcopy(FIXTURE)
            bad["metadata"]["name"] = "noncompliant"
            c = bad["spec"]["containers"][0]
            c["securityContext"].pop("allowPrivilegeEscalation")
            c["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
            st, r, _ = api.call("POST", f"/api/v1/namespaces/{ns}/pods?dryRun=All", bad)
            check(st == 403 and "PodSecurity" in r.get("message", ""), f"{st} {r.get('message')}")
            print(f"  the non-compliant fixture: {st} {r.get('message')[:160]}", flush=True)
            st, r, _ = api.call("GET", f"/api/v1/namespaces/{ns}/pods")
            check(st == 200 and not r.get("items"), "a dry-run stored a Pod")

        for name, fn in (("version", version), ("crds_established", crds),
                         ("restricted_namespaces", restricted_namespaces),
                         ("helm_install_dry_run_server", helm_installs),
                         ("pods_admitted_without_warnings", pods_admitted),
                         ("noncompliant_pod_refused", noncompliant_refused)):
            CASES.run(name, fn)
    finally:
        subprocess.run(["bash", SCRIPT, "stop", run_dir], capture_output=True, text=True)
    print(f"tier: build {built:.1f} s, total {time.time() - t0:.1f} s", flush=True)
    return CASES.finish(expected=6)


FIXTURE = None


def pod_of(workload, ns):
    """The Pod a controller would make from the workload's template (claims as volumes)."""
    t = copy.deepcopy(workload["spec"]["template"])
    spec = t["spec"]
    for claim in workload["spec"].get("volumeClaimTemplates", []):
        name = claim["metadata"]["name"]
        spec.setdefault("volumes", []).append(
            {"name": name, "persistentVolumeClaim": {"claimName": f"{name}-{workload['metadata']['name']}-0"}})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{workload['metadata']['name']}-0", "namespace": ns,
                         "labels": t["metadata"].get("labels", {}),
                         "annotations": t["metadata"].get("annotations", {})},
            "spec": spec}


if __name__ == "__main__":
    sys.exit(main())
