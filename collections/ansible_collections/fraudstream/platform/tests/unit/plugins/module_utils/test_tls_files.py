# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The TLS file checks shared by the Kafka and the Prometheus options: one wording for both,
naming the option, the path, and the fix."""
from __future__ import annotations

import pytest

from ansible_collections.fraudstream.platform.plugins.module_utils.kafka_options import connection_problems
from ansible_collections.fraudstream.platform.plugins.module_utils.prometheus import prometheus_problems
from ansible_collections.fraudstream.platform.plugins.module_utils.tls_files import tls_file_problems

FILES = (("ca", "the CA bundle"), ("cert", "the client certificate"))


def env_name(option):
    return "X_" + option.upper()


def test_unset_and_usable_files_pass():
    assert tls_file_problems({"ca": None, "cert": "/ok"}, FILES, env_name, isfile=lambda p: True,
                             readable=lambda p: True) == []


def test_a_missing_and_an_unreadable_file_each_name_the_option_and_the_fix():
    errors = tls_file_problems({"ca": "/nowhere", "cert": "/secret"}, FILES, env_name,
                               isfile=lambda p: p != "/nowhere", readable=lambda p: p != "/secret")
    assert errors == [
        "ca '/nowhere' does not exist or is not a file: set ca (X_CA) to the path of the CA bundle on the host "
        "the module runs on",
        "cert '/secret' is not readable by the user the module runs as: make it readable, or run the task as a "
        "user who can read it",
    ]


def kafka(key, path, **kw):
    params = dict(security_protocol="SSL", ssl_cafile=None, ssl_certfile="/c", ssl_keyfile=None)
    params[key] = path
    return connection_problems(params, **kw)[0]


def prometheus(key, path, **kw):
    params = dict(ca_path=None, client_cert="/c", client_key=None)
    params[key] = path
    return prometheus_problems(params, **kw)


@pytest.mark.parametrize("isfile, readable, problem", [
    (lambda p: p == "/c", lambda p: True, "does not exist or is not a file: set "),
    (lambda p: True, lambda p: p == "/c", "is not readable by the user the module runs as: make it readable"),
])
def test_kafka_and_prometheus_say_the_same(isfile, readable, problem):
    (k,) = kafka("ssl_cafile", "/ca.pem", isfile=isfile, readable=readable)
    (p,) = prometheus("ca_path", "/ca.pem", isfile=isfile, readable=readable)
    assert k.startswith("ssl_cafile '/ca.pem' " + problem)
    assert p.startswith("ca_path '/ca.pem' " + problem)
