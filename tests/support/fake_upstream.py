#!/usr/bin/env python3
"""The alert API and a chat service, for the packaging tests.

    fake_upstream.py PORT OUTDIR ALERT_JSON

Serves on 127.0.0.1:PORT (standard library only):

- GET /api/v1/sic/alerts/<uuid>: ALERT_JSON with that uuid (200);
- POST /chat/<name>: appends the body as one line to OUTDIR/<name>.jsonl and
  answers 200 "ok", or 503 while OUTDIR/<name>.down exists (so a test can
  make the chat service fail, then recover);
- anything else: 404.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, OUTDIR, ALERT_FILE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(ALERT_FILE) as f:
    ALERT = json.load(f)


class Handler(BaseHTTPRequestHandler):
    def _answer(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        prefix = "/api/v1/sic/alerts/"
        path = self.path.split("?")[0]
        if path.startswith(prefix):
            alert = dict(ALERT, uuid=path[len(prefix):])
            self._answer(200, json.dumps(alert))
        else:
            self._answer(404, '{"message": "not found"}')

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if not self.path.startswith("/chat/"):
            self._answer(404, '{"message": "not found"}')
            return
        name = self.path[len("/chat/"):].replace("/", "_")
        if os.path.exists(os.path.join(OUTDIR, name + ".down")):
            self._answer(503, "down", "text/plain")
            return
        with open(os.path.join(OUTDIR, name + ".jsonl"), "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self._answer(200, "ok", "text/plain")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
