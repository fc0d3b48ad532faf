"""Stand-in for ansible-test's get-pip bootstrap script, which it downloads from a host this
network cannot reach. It installs the interpreter's bundled pip (ensurepip), points the new venv's
pip at the system CA bundle (ansible-test strips PIP_* and SSL_* variables), then runs
`pip install` with the same arguments, minus get-pip's own --no-setuptools/--no-wheel flags.
`make sanity` copies it to ~/.ansible/test/cache/get_pip_<version>.py."""
import ensurepip
import os
import subprocess
import sys

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

ensurepip.bootstrap(upgrade=True)
if os.path.exists(CA_BUNDLE):
    with open(os.path.join(sys.prefix, "pip.conf"), "w") as conf:
        conf.write("[global]\ncert = %s\n" % CA_BUNDLE)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
env = dict(os.environ, PIP_CERT=CA_BUNDLE, SSL_CERT_FILE=CA_BUNDLE)
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args], env=env))
