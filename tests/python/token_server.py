"""A loopback stand-in for the Microsoft Entra token endpoint, over HTTPS.

Usage: token_server.py PORT CERT KEY STATE_FILE LOG_FILE

POST /{tenant}/oauth2/v2.0/token answers the client-credentials flow with the token
and lifetime STATE_FILE holds ({"token": ..., "expires_in": ...}), read at every
request so a test can rotate it; each request's grant type, client id and scope (never
its secret) is appended to LOG_FILE as a JSON line.
"""

import http.server
import json
import ssl
import sys
import urllib.parse

port, cert, key, state_file, log_file = sys.argv[1:6]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        with open(state_file) as f:
            state = json.load(f)
        with open(log_file, "a") as f:
            f.write(json.dumps({
                "path": self.path,
                "grant_type": form.get("grant_type", [""])[0],
                "client_id": form.get("client_id", [""])[0],
                "scope": form.get("scope", [""])[0],
                "has_secret": bool(form.get("client_secret", [""])[0]),
            }) + "\n")
        body = json.dumps({
            "token_type": "Bearer",
            "expires_in": state["expires_in"],
            "ext_expires_in": state["expires_in"],
            "access_token": state["token"],
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
