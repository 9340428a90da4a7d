"""Test certificates for the TLS tests, made at test time by tests/tls/make_certs.sh (the
script the C tests use too): a test CA, a server certificate for localhost / 127.0.0.1 / ::1,
one for another name, and an unrelated CA."""
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "tls", "make_certs.sh")


class Certs(object):
    def __init__(self, directory):
        self.dir = str(directory)
        subprocess.run(["/bin/sh", SCRIPT, self.dir], check=True, timeout=60)

    def path(self, name):
        return os.path.join(self.dir, name)

    @property
    def ca(self):
        return self.path("ca.pem")

    @property
    def other_ca(self):
        return self.path("other-ca.pem")

    @property
    def server(self):
        return (self.path("server.pem"), self.path("server.key"))

    @property
    def wrong_name(self):
        return (self.path("wrongname.pem"), self.path("wrongname.key"))
