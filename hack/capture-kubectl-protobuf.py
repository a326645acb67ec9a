#!/usr/bin/env python3
"""Capture the protobuf request bodies kubectl 1.33 sends, as decoder test fixtures.

For each command below, runs kubectl against a one-shot HTTP listener on loopback that answers
discovery with minimal JSON, saves the POST body to OUT_DIR/kubectl-1.33-NAME.pb and replies
with a small JSON object of the expected kind. Where kubectl can print the same object with
`--dry-run=client -o json` (Go's own JSON encoding), that is saved as NAME.json next to it.

Usage: hack/capture-kubectl-protobuf.py OUT_DIR [kubectl]
"""
import http.server
import json
import os
import subprocess
import sys
import threading

out_dir = sys.argv[1]
kubectl = sys.argv[2] if len(sys.argv) > 2 else "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"

# name, kubectl arguments, reply object, whether --dry-run=client -o json applies.
COMMANDS = [
    ("create-configmap", ["create", "configmap", "x", "--from-literal=a=b", "--from-literal=k=v"],
     {"apiVersion": "v1", "kind": "ConfigMap"}, True),
    ("create-deployment", ["create", "deployment", "web", "--image=nginx:1.27", "--replicas=2",
                           "--port=80"],
     {"apiVersion": "apps/v1", "kind": "Deployment"}, True),
    ("create-secret", ["create", "secret", "generic", "s", "--from-literal=password=hunter2"],
     {"apiVersion": "v1", "kind": "Secret"}, True),
    ("create-job", ["create", "job", "j", "--image=busybox", "--", "date"],
     {"apiVersion": "batch/v1", "kind": "Job"}, True),
    ("create-service", ["create", "service", "clusterip", "svc", "--tcp=80:8080"],
     {"apiVersion": "v1", "kind": "Service"}, True),
    ("create-role", ["create", "role", "r", "--verb=get", "--resource=pods"],
     {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role"}, True),
    ("create-token", ["create", "token", "default", "--duration=1h", "--audience=api"],
     {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
      "status": {"token": "t", "expirationTimestamp": "2030-01-01T00:00:00Z"}}, False),
    ("auth-can-i", ["auth", "can-i", "create", "deployments"],
     {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
      "status": {"allowed": True}}, False),
]


def resource_list(group_version, plural, singular, kind):
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": [{"name": plural, "singularName": singular, "namespaced": True,
                           "kind": kind, "verbs": ["create", "get", "list"]}]}


def run(name, args, reply_obj, dry):
    captured = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):
            sys.stderr.write(f"{name}: " + (fmt % a) + "\n")

        def reply(self, code, obj):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/version":
                self.reply(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
            elif path == "/api":
                self.reply(200, {"kind": "APIVersions", "versions": ["v1"],
                                 "serverAddressByClientCIDRs": []})
            elif path == "/apis":
                self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                    {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                     "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]})
            elif path == "/api/v1":
                self.reply(200, resource_list("v1", "pods", "pod", "Pod"))
            elif path == "/apis/apps/v1":
                self.reply(200, resource_list("apps/v1", "deployments", "deployment",
                                              "Deployment"))
            else:
                self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "reason": "NotFound", "code": 404})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            captured.update(path=self.path, content_type=self.headers.get("Content-Type"))
            with open(os.path.join(out_dir, f"kubectl-1.33-{name}.pb"), "wb") as f:
                f.write(body)
            obj = dict(reply_obj)
            obj["metadata"] = {"name": "x", "namespace": "default"}
            self.reply(201, obj)

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = [kubectl, "--server", f"http://127.0.0.1:{server.server_address[1]}", "--token", "x",
            "-n", "default"]
    res = subprocess.run(base + args, capture_output=True, text=True, timeout=60)
    print(name, "->", res.returncode, res.stdout.strip(), res.stderr.strip()[:200], captured)
    if dry:
        # Go's JSON of the same object, printed client-side.
        split = args.index("--") if "--" in args else len(args)
        cmd = base + args[:split] + ["--dry-run=client", "-o", "json"] + args[split:]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if res.returncode == 0:
            with open(os.path.join(out_dir, f"kubectl-1.33-{name}.json"), "w") as f:
                f.write(res.stdout)
        else:
            print(name, "dry-run failed:", res.stderr.strip()[:300])
    server.shutdown()
    server.server_close()


for name, args, reply_obj, dry in COMMANDS:
    run(name, args, reply_obj, dry)
