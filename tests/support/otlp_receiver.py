"""An OTLP/HTTP metrics receiver for the `otlp` output's tests.

Decodes each POST body as an ExportMetricsServiceRequest with the OpenTelemetry project's
own generated bindings (opentelemetry-proto), and appends one JSON line per request to
OUT: the headers and the request as protobuf's JSON mapping. Answers 503 while the file
FAIL exists (a collector that is down), 400 to a body that does not decode.

    python otlp_receiver.py PORT OUT FAIL
"""
import http.server
import json
import os
import sys

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

PORT, OUT, FAIL = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if os.path.exists(FAIL):
            self.reply(503, b"down for the test")
            return
        request = metrics_service_pb2.ExportMetricsServiceRequest()
        try:
            request.ParseFromString(body)
        except Exception as e:  # a body that does not decode: the test sees it in the log
            sys.stderr.write(f"undecodable body: {e}\n")
            self.reply(400, str(e).encode())
            return
        with open(OUT, "a") as f:
            f.write(json.dumps({"path": self.path, "headers": dict(self.headers),
                                "request": MessageToDict(request)}) + "\n")
        self.reply(200, metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString())

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
server.serve_forever()
