#!/usr/bin/env python3
"""Checks deploy/ without a cluster: the Kubernetes manifests parse and agree
with each other and with the programs' flags, the Slurm scripts are valid
bash with the directives they promise, and the Dockerfile builds what the
manifests run.

    python3 deploy/check_deploy.py [REPO_ROOT]

Needs python3-yaml (Debian). When kubectl is on PATH, `kubectl kustomize` must
also render deploy/k8s (offline, no cluster needed). Exit 0: all good; 1: the
problems are listed; 77: python3-yaml is missing.
"""
import os
import re
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is not installed (apt-get install python3-yaml)")
    sys.exit(77)

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), ".."))
K8S = os.path.join(ROOT, "deploy", "k8s")
SLURM = os.path.join(ROOT, "deploy", "slurm")
problems = []


def check(cond, what):
    if not cond:
        problems.append(what)
    return cond


def load(name):
    path = os.path.join(K8S, name)
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        problems.append(f"{name}: {e}")
        return []
    for d in docs:
        keys = ("apiVersion", "kind") + (
            () if d.get("kind") == "Kustomization" else ("metadata",))
        for key in keys:
            check(key in d, f"{name}: a document without {key}")
    return docs


def one(name, kind):
    docs = [d for d in load(name) if d.get("kind") == kind]
    check(len(docs) == 1, f"{name}: expected one {kind}, found {len(docs)}")
    return docs[0] if docs else {}


def flag(args, name):
    """The value after --name in a container's args, or None."""
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return str(args[i + 1])
        if isinstance(a, str) and a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def mounted(container, volumes, path):
    """The (mount, volume) under which `path` lies in the container."""
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            return m, volumes.get(m["name"])
    return None, None


def secret_key_at(container, volumes, path, secret):
    """The Secret key mounted at `path`, checking the volume is `secret`."""
    m, v = mounted(container, volumes, path)
    if not check(m is not None and v is not None and "secret" in v,
                 f"{path} is not mounted from a Secret"):
        return None
    check(v["secret"].get("secretName") == secret,
          f"{path}: from Secret {v['secret'].get('secretName')}, not {secret}")
    rel = os.path.relpath(path, m["mountPath"])
    items = v["secret"].get("items")
    if items is None:
        return rel
    for it in items:
        if it["path"] == rel:
            return it["key"]
    check(False, f"{path}: no item of the Secret volume is mounted there")
    return None


def pod_of(workload, name):
    spec = workload.get("spec", {})
    tmpl = spec.get("template", {})
    labels = tmpl.get("metadata", {}).get("labels", {})
    sel = spec.get("selector", {}).get("matchLabels", {})
    check(sel and all(labels.get(k) == v for k, v in sel.items()),
          f"{name}: selector {sel} does not match the pod labels {labels}")
    pod = tmpl.get("spec", {})
    containers = pod.get("containers", [])
    check(len(containers) == 1, f"{name}: expected one container")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for vct in spec.get("volumeClaimTemplates", []):
        volumes[vct["metadata"]["name"]] = {"persistentVolumeClaim": vct}
    c = containers[0] if containers else {}
    for m in c.get("volumeMounts", []):
        check(m["name"] in volumes,
              f"{name}: mount {m['mountPath']} names no volume {m['name']}")
    return pod, c, volumes, labels


def report():
    if problems:
        print("deploy/ has problems:")
        for p in problems:
            print("  - " + p)
        sys.exit(1)


# --- Kubernetes -----------------------------------------------------------
for name in sorted(os.listdir(K8S)):
    if name.endswith(".yaml"):
        load(name)  # every file parses
report()  # what follows needs them all

kust = one("kustomization.yaml", "Kustomization")
resources = kust.get("resources", [])
for r in resources:
    check(os.path.isfile(os.path.join(K8S, r)),
          f"kustomization.yaml: resource {r} does not exist")
check("secret.example.yaml" not in resources,
      "kustomization.yaml must not apply the example Secret")
for r in ("service.yaml", "server.yaml", "workers.yaml"):
    check(r in resources, f"kustomization.yaml: {r} is not a resource")
sts = one("server.yaml", "StatefulSet")
svc = one("service.yaml", "Service")
dep = one("workers.yaml", "Deployment")
secret = one("secret.example.yaml", "Secret")
secret_name = secret.get("metadata", {}).get("name")
secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
report()  # each kind is where it belongs

# Server.
s_spec = sts.get("spec", {})
check(s_spec.get("replicas") == 1, "server.yaml: replicas must be 1 (SQLite)")
pod, c, volumes, s_labels = pod_of(sts, "server.yaml")
check(pod.get("terminationGracePeriodSeconds", 0) >= 30,
      "server.yaml: terminationGracePeriodSeconds below 30 s")
check(c.get("command", [None])[0] == "autoq-server",
      "server.yaml: the command is not autoq-server")
args = [str(a) for a in c.get("args", [])]
ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
listen = flag(args, "--listen") or "0.0.0.0:50051"
lport = int(listen.rsplit(":", 1)[1])
check(lport in ports.values(),
      f"server.yaml: --listen port {lport} is not a container port")
for kind in ("readinessProbe", "livenessProbe"):
    # A gRPC probe (the server's health service) on the listen port, or a
    # TCP one (clusters before 1.24, or a server with TLS).
    p = c.get(kind, {})
    probe = p.get("grpc", {}).get("port", p.get("tcpSocket", {}).get("port"))
    if check(probe is not None, f"server.yaml: no gRPC or TCP {kind}"):
        check(ports.get(probe, probe) == lport,
              f"server.yaml: the {kind} checks {probe}, not {lport}")
    if "grpc" in p:
        check(not flag(args, "--tls-cert"),
              f"server.yaml: a gRPC {kind} cannot speak TLS; use tcpSocket")
db = flag(args, "--db")
if check(db is not None, "server.yaml: no --db"):
    m, v = mounted(c, volumes, db)
    check(v is not None and "persistentVolumeClaim" in v,
          f"server.yaml: the database {db} is not on a PersistentVolumeClaim")
check(s_spec.get("volumeClaimTemplates"),
      "server.yaml: no volumeClaimTemplates")
for f in ("--client-tokens", "--worker-tokens"):
    path = flag(args, f)
    if check(path is not None, f"server.yaml: no {f}"):
        key = secret_key_at(c, volumes, path, secret_name)
        check(key is None or key in secret_keys,
              f"server.yaml: {f} is key {key}, not in secret.example.yaml")

# Service.
s = svc.get("spec", {})
check(s.get("type", "ClusterIP") == "ClusterIP", "service.yaml: not ClusterIP")
sel = s.get("selector", {})
check(sel and all(s_labels.get(k) == v for k, v in sel.items()),
      "service.yaml: the selector does not match the server pod")
svc_ports = s.get("ports", [])
check(any(p.get("port") == 50051 for p in svc_ports),
      "service.yaml: no port 50051")
for p in svc_ports:
    t = p.get("targetPort", p.get("port"))
    check(ports.get(t, t) == lport,
          f"service.yaml: targetPort {t} is not the server's port {lport}")
check(sts.get("spec", {}).get("serviceName") == svc["metadata"]["name"],
      "server.yaml: serviceName is not the Service")

# Workers.
pod, c, volumes, w_labels = pod_of(dep, "workers.yaml")
check(c.get("command", [None])[0] == "autoq-worker",
      "workers.yaml: the command is not autoq-worker")
args = [str(a) for a in c.get("args", [])]
limits = c.get("resources", {}).get("limits", {})
check(str(limits.get("nvidia.com/gpu")) == "1",
      "workers.yaml: limits.nvidia.com/gpu must be 1 (one GPU per pod)")
check(flag(args, "--device") == "cuda:0", "workers.yaml: --device is not cuda:0")
server = flag(args, "--server") or ""
check(server in (f"{svc['metadata']['name']}:50051",
                 f"{svc['metadata']['name']}.autoq.svc:50051"),
      f"workers.yaml: --server {server} is not the Service")
tok = flag(args, "--token-file")
if check(tok is not None, "workers.yaml: no --token-file"):
    key = secret_key_at(c, volumes, tok, secret_name)
    check(key is None or key in secret_keys,
          f"workers.yaml: the token is key {key}, not in secret.example.yaml")
check(any(v.get("hostPath") or v.get("persistentVolumeClaim")
          for n, v in volumes.items() if "dataset" in n),
      "workers.yaml: no dataset volume (hostPath or PVC)")
env_names = {e["name"] for e in c.get("env", [])}
for a in args:
    for ref in re.findall(r"\$\((\w+)\)", a):
        check(ref in env_names, f"workers.yaml: $({ref}) is not an env var")
check(pod.get("terminationGracePeriodSeconds", 0) >= 60,
      "workers.yaml: too short a grace period to finish a task")

# Example Secret: placeholders only, and the keys the pods mount.
for k, v in secret.get("stringData", {}).items():
    for line in str(v).splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        check(len(words[-1]) < 16,
              f"secret.example.yaml: {k} holds something token-sized")
check({"client-tokens", "worker-tokens", "worker.token"} <= secret_keys,
      "secret.example.yaml: keys client-tokens, worker-tokens, worker.token")

# One image, the one the Dockerfile builds.
for name, w in (("server.yaml", sts), ("workers.yaml", dep)):
    img = w["spec"]["template"]["spec"]["containers"][0].get("image", "")
    check(img.split(":")[0] == "autoq", f"{name}: image {img} is not autoq")
check(any(i.get("name") == "autoq" for i in kust.get("images", [])),
      "kustomization.yaml: no images entry for autoq")

kubectl = shutil.which("kubectl")
if kubectl:
    r = subprocess.run([kubectl, "kustomize", K8S], capture_output=True,
                       text=True, timeout=60)
    if check(r.returncode == 0,
             f"kubectl kustomize deploy/k8s: {r.stderr.strip()}"):
        kinds = [d["kind"] for d in yaml.safe_load_all(r.stdout) if d]
        check(sorted(kinds) == sorted(
            ["Namespace", "Service", "StatefulSet", "Deployment"]),
              f"kubectl kustomize renders {kinds}")
        print(f"kubectl kustomize: {len(kinds)} objects")

# --- Dockerfile -----------------------------------------------------------
with open(os.path.join(ROOT, "deploy", "docker", "Dockerfile")) as f:
    docker = f.read()
check(re.search(r"^ARG BASE=debian:12$", docker, re.M),
      "Dockerfile: not based on debian:12")
for needed in ("scripts/install_deps.sh", "scripts/build.sh",
               "build/server/autoq-server", "build/evaluator/autoq-worker",
               "build/client/autoq", "runtime-packages.sh"):
    check(needed in docker, f"Dockerfile: does not use {needed}")
for script in ("scripts/install_deps.sh", "scripts/build.sh",
               "deploy/docker/runtime-packages.sh"):
    check(os.access(os.path.join(ROOT, script), os.X_OK),
          f"{script} is not executable")

# --- Slurm ----------------------------------------------------------------
for name in ("autoq-server.sbatch", "autoq-workers.sbatch", "launch.sh"):
    path = os.path.join(SLURM, name)
    check(os.access(path, os.X_OK), f"deploy/slurm/{name} is not executable")
    r = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
    check(r.returncode == 0, f"deploy/slurm/{name}: {r.stderr.strip()}")


def directives(name):
    with open(os.path.join(SLURM, name)) as f:
        return [l.split(None, 1)[1].strip() for l in f
                if l.startswith("#SBATCH ")]


d = directives("autoq-workers.sbatch")
check("--gres=gpu:1" in d, "autoq-workers.sbatch: no #SBATCH --gres=gpu:1")
check(any(x.startswith("--signal=") for x in d),
      "autoq-workers.sbatch: no #SBATCH --signal")
check(not any("gres" in x for x in directives("autoq-server.sbatch")),
      "autoq-server.sbatch: the server must not take a GPU")
check(any(x.startswith("--signal=") for x in directives("autoq-server.sbatch")),
      "autoq-server.sbatch: no #SBATCH --signal")
with open(os.path.join(SLURM, "launch.sh")) as f:
    launch = f.read()
check("--dependency" in launch and "after:" in launch,
      "launch.sh: workers do not depend on the server job")

report()
print("deploy/: Kubernetes manifests, Dockerfile and Slurm scripts check out")
