"""A minimal OpenID Connect provider for tests: serves discovery and a JSON Web Key Set, mints
tokens signed RS256 or ES256 with its current keys, and rotates them on request.

usage: oidc_provider.py   prints "http://127.0.0.1:PORT" (its issuer) once it listens, then
serves until killed.

  GET  /.well-known/openid-configuration   discovery (issuer, jwks_uri)
  GET  /jwks                               the current public keys
  POST /mint   {"alg": "RS256"|"ES256", "claims": {...}}   a token signed with the current key
  POST /rotate                             new keys, new kids; the old ones are withdrawn
  GET  /stats                              {"jwks_fetches": N}
  POST /login-as {"email": ...}            the person signed in at the provider (as a browser
                                           session would be); /authorize answers for them
  GET  /authorize?response_type=code&client_id&redirect_uri&state&code_challenge
                 &code_challenge_method=S256
                                           redirects to redirect_uri with a one-time code
  POST /token (form: grant_type=authorization_code, code, code_verifier, redirect_uri,
               client_id)                  {"id_token": ...} once the PKCE verifier matches
"""

import base64
import hashlib
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def integer(n: int, length: int | None = None) -> str:
    length = length or (n.bit_length() + 7) // 8
    return b64(n.to_bytes(length, "big"))


class Keys:
    def __init__(self):
        self.generation = 0
        self.lock = threading.Lock()
        self.rotate()

    def rotate(self):
        with self.lock:
            self.generation += 1
            self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.ec = ec.generate_private_key(ec.SECP256R1())

    def kid(self, alg: str) -> str:
        return f"{alg.lower()}-{self.generation}"

    def jwks(self) -> dict:
        with self.lock:
            r = self.rsa.public_key().public_numbers()
            e = self.ec.public_key().public_numbers()
            return {"keys": [
                {"kty": "RSA", "kid": self.kid("RS256"), "use": "sig", "alg": "RS256",
                 "n": integer(r.n), "e": integer(r.e)},
                {"kty": "EC", "kid": self.kid("ES256"), "use": "sig", "alg": "ES256", "crv": "P-256",
                 "x": integer(e.x, 32), "y": integer(e.y, 32)},
            ]}

    def sign(self, alg: str, claims: dict) -> str:
        with self.lock:
            header = {"alg": alg, "typ": "JWT", "kid": self.kid(alg)}
            signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
            data = signing_input.encode()
            if alg == "RS256":
                signature = self.rsa.sign(data, padding.PKCS1v15(), hashes.SHA256())
            else:
                r, s = decode_dss_signature(self.ec.sign(data, ec.ECDSA(hashes.SHA256())))
                signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
            return f"{signing_input}.{b64(signature)}"


def main():
    keys = Keys()
    stats = {"jwks_fetches": 0}
    session = {"email": None}
    codes = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status: int, body: dict | str):
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorize(self, query: dict):
            one = lambda name: (query.get(name) or [""])[0]
            if session["email"] is None:
                return self.answer(401, {"error": "login_required"})
            if one("response_type") != "code" or one("code_challenge_method") != "S256" \
                    or not one("code_challenge") or not one("redirect_uri"):
                return self.answer(400, {"error": "invalid_request"})
            code = secrets.token_urlsafe(24)
            codes[code] = {"email": session["email"], "challenge": one("code_challenge"),
                           "client_id": one("client_id"), "redirect_uri": one("redirect_uri")}
            target = one("redirect_uri") + "?" + urlencode({"code": code, "state": one("state")})
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def token(self, form: dict):
            one = lambda name: (form.get(name) or [""])[0]
            grant = codes.pop(one("code"), None)
            verifier = one("code_verifier").encode()
            challenge = b64(hashlib.sha256(verifier).digest())
            if grant is None or one("grant_type") != "authorization_code" \
                    or grant["challenge"] != challenge or grant["client_id"] != one("client_id") \
                    or grant["redirect_uri"] != one("redirect_uri"):
                return self.answer(400, {"error": "invalid_grant"})
            now = int(time.time())
            claims = {"iss": issuer, "aud": grant["client_id"], "sub": grant["email"],
                      "email": grant["email"], "iat": now, "exp": now + 600}
            self.answer(200, {"id_token": keys.sign("RS256", claims), "token_type": "Bearer"})

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/authorize":
                self.authorize(parse_qs(url.query))
            elif self.path == "/.well-known/openid-configuration":
                self.answer(200, {"issuer": issuer, "jwks_uri": f"{issuer}/jwks",
                                  "authorization_endpoint": f"{issuer}/authorize",
                                  "token_endpoint": f"{issuer}/token",
                                  "code_challenge_methods_supported": ["S256"],
                                  "id_token_signing_alg_values_supported": ["RS256", "ES256"]})
            elif self.path == "/jwks":
                stats["jwks_fetches"] += 1
                self.answer(200, keys.jwks())
            elif self.path == "/stats":
                self.answer(200, stats)
            else:
                self.answer(404, {"error": "not_found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length)
            if self.path == "/token":
                return self.token(parse_qs(data.decode()))
            body = json.loads(data or b"{}")
            if self.path == "/login-as":
                session["email"] = body["email"]
                self.answer(200, {"email": session["email"]})
            elif self.path == "/mint":
                self.answer(200, {"token": keys.sign(body.get("alg", "RS256"), body["claims"])})
            elif self.path == "/rotate":
                keys.rotate()
                self.answer(200, {"generation": keys.generation})
            else:
                self.answer(404, {"error": "not_found"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer = f"http://127.0.0.1:{server.server_address[1]}"
    print(issuer, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
