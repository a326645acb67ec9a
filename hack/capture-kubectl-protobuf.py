#!/usr/bin/env python3
"""Capture the protobuf request body kubectl 1.33 sends for `kubectl create configmap`.

Runs a one-shot HTTP listener on loopback that answers discovery with minimal JSON, saves the
first POST body it receives and answers it with the object kubectl expects back.

Usage: hack/capture-kubectl-protobuf.py OUT.pb [kubectl]
"""
import http.server
import json
import subprocess
import sys
import threading

out_path = sys.argv[1]
kubectl = sys.argv[2] if len(sys.argv) > 2 else "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
captured = {}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("listener: " + (fmt % args) + "\n")

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/version"):
            self.reply(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
        elif self.path.startswith("/apis"):
            self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        elif self.path.startswith("/api"):
            self.reply(200, {"kind": "APIVersions", "versions": ["v1"],
                             "serverAddressByClientCIDRs": []})
        else:
            self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "reason": "NotFound", "code": 404})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        captured["content_type"] = self.headers.get("Content-Type")
        captured["accept"] = self.headers.get("Accept")
        captured["path"] = self.path
        with open(out_path, "wb") as f:
            f.write(body)
        self.reply(201, {"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "x", "namespace": "default"},
                         "data": {"a": "b", "k": "v"}})


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
port = server.server_address[1]
threading.Thread(target=server.serve_forever, daemon=True).start()
res = subprocess.run([kubectl, "--server", f"http://127.0.0.1:{port}", "--token", "x",
                      "-n", "default", "create", "configmap", "x",
                      "--from-literal=a=b", "--from-literal=k=v"],
                     capture_output=True, text=True, timeout=60)
server.shutdown()
print("kubectl:", res.returncode, res.stdout.strip(), res.stderr.strip())
print("captured:", captured)
