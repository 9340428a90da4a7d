"""SASL server side: PLAIN and SCRAM-SHA1/256/512 (RFC 5802), sans-IO.

A ``Credentials`` store keeps, per user and hash, the salt and the derived
StoredKey/ServerKey (never the password itself once derived).  A mechanism
object is fed client messages and answers ``(status, reply bytes)`` where
status is "continue", "ok" or "fail".  Like cbsasl, an unknown user still gets
a server-first message (with a made-up salt) so that a client cannot tell
unknown users from wrong passwords; the exchange then fails at the proof.
"""
import base64
import hashlib
import hmac
import os

MECHANISMS = ("SCRAM-SHA512", "SCRAM-SHA256", "SCRAM-SHA1", "PLAIN")
HASHES = {"SCRAM-SHA1": "sha1", "SCRAM-SHA256": "sha256", "SCRAM-SHA512": "sha512"}
ITERATIONS = 4096


def _hmac(key, msg, hname):
    return hmac.new(key, msg, hname).digest()


class Credentials(object):
    """Users and passwords, with the SCRAM secrets derived once per user and hash."""

    def __init__(self, iterations=ITERATIONS):
        self.iterations = iterations
        self._passwords = {}
        self._scram = {}   # (user, hname) -> (salt, stored_key, server_key)

    def add(self, user, password):
        self._passwords[user] = password
        for hname in HASHES.values():
            self._scram.pop((user, hname), None)

    def remove(self, user):
        self._passwords.pop(user, None)
        for hname in HASHES.values():
            self._scram.pop((user, hname), None)

    def __contains__(self, user):
        return user in self._passwords

    def check_plain(self, user, password):
        known = self._passwords.get(user)
        return known is not None and hmac.compare_digest(known.encode("utf-8"), password.encode("utf-8"))

    def scram_secrets(self, user, hname):
        """(salt, iterations, stored_key, server_key), or None for an unknown user."""
        if user not in self._passwords:
            return None
        got = self._scram.get((user, hname))
        if got is None:
            salt = os.urandom(hashlib.new(hname).digest_size)
            salted = hashlib.pbkdf2_hmac(hname, self._passwords[user].encode("utf-8"), salt,
                                         self.iterations)
            client_key = _hmac(salted, b"Client Key", hname)
            got = (salt, hashlib.new(hname, client_key).digest(), _hmac(salted, b"Server Key", hname))
            self._scram[(user, hname)] = got
        return (got[0], self.iterations, got[1], got[2])


class Plain(object):
    """PLAIN: one message ``authzid NUL user NUL password``."""
    name = "PLAIN"

    def __init__(self, creds):
        self.creds = creds
        self.user = None

    def start(self, data):
        parts = data.split(b"\x00")
        if len(parts) != 3:
            return "fail", b""
        try:
            user, password = parts[1].decode("utf-8"), parts[2].decode("utf-8")
        except UnicodeDecodeError:
            return "fail", b""
        if self.creds.check_plain(user, password):
            self.user = user
            return "ok", b""
        return "fail", b""

    def step(self, data):
        return "fail", b""


def _unescape_name(s):
    return s.replace("=2C", ",").replace("=3D", "=")


def _attrs(msg):
    out = {}
    for part in msg.split(","):
        if len(part) >= 2 and part[1] == "=":
            out.setdefault(part[0], part[2:])
    return out


class Scram(object):
    """SCRAM-SHA*: client-first (AUTH) -> server-first (continue) -> client-final (STEP) -> v=."""

    def __init__(self, creds, mechanism):
        self.name = mechanism
        self.hname = HASHES[mechanism]
        self.creds = creds
        self.user = None
        self._state = "start"

    def start(self, data):
        try:
            msg = data.decode("utf-8")
        except UnicodeDecodeError:
            return "fail", b""
        # gs2 header: "n,," or "y,," (no channel binding); "p=" asks for binding we do not offer
        if not (msg.startswith("n,") or msg.startswith("y,")):
            return "fail", b""
        head_end = msg.find(",", 2)
        if head_end < 0:
            return "fail", b""
        self._gs2 = msg[:head_end + 1]
        self._client_first_bare = msg[head_end + 1:]
        attrs = _attrs(self._client_first_bare)
        if "n" not in attrs or "r" not in attrs or not attrs["r"]:
            return "fail", b""
        self._username = _unescape_name(attrs["n"])
        self._nonce = attrs["r"] + base64.b64encode(os.urandom(18)).decode("ascii")
        secrets = self.creds.scram_secrets(self._username, self.hname)
        if secrets is None:  # unknown user: carry on with made-up secrets, fail at the proof
            size = hashlib.new(self.hname).digest_size
            secrets = (os.urandom(size), self.creds.iterations, None, None)
        self._secrets = secrets
        self._server_first = "r=%s,s=%s,i=%d" % (
            self._nonce, base64.b64encode(secrets[0]).decode("ascii"), secrets[1])
        self._state = "first-sent"
        return "continue", self._server_first.encode("ascii")

    def step(self, data):
        if self._state != "first-sent":
            return "fail", b""
        self._state = "done"
        try:
            msg = data.decode("utf-8")
        except UnicodeDecodeError:
            return "fail", b""
        attrs = _attrs(msg)
        if "p" not in attrs or attrs.get("r") != self._nonce:
            return "fail", b""
        try:
            binding = base64.b64decode(attrs.get("c", ""), validate=True)
            proof = base64.b64decode(attrs["p"], validate=True)
        except (ValueError, TypeError):
            return "fail", b""
        if binding != self._gs2.encode("utf-8"):
            return "fail", b""
        final_without_proof = msg[:msg.rfind(",p=")]
        auth_message = ",".join((self._client_first_bare, self._server_first,
                                 final_without_proof)).encode("utf-8")
        _salt, _it, stored_key, server_key = self._secrets
        if stored_key is None or len(proof) != len(stored_key):
            return "fail", b""
        signature = _hmac(stored_key, auth_message, self.hname)
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.new(self.hname, client_key).digest(), stored_key):
            return "fail", b""
        self.user = self._username
        server_sig = _hmac(server_key, auth_message, self.hname)
        return "ok", b"v=" + base64.b64encode(server_sig)


def mechanism(creds, name):
    """A fresh server-side mechanism object for ``name``, or None if we do not offer it."""
    if name == "PLAIN":
        return Plain(creds)
    if name in HASHES:
        return Scram(creds, name)
    return None
