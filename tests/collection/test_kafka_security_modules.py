"""The Kafka modules against a real secured broker: SASL_SSL with SCRAM-SHA-512 and ACLs.

One KRaft node, formatted in a temporary directory, listens on free 127.0.0.1 ports only:
  - SASL_SSL for clients, with a certificate of a CA made here (SAN 127.0.0.1 and localhost,
    keystore and truststore as PEM files);
  - CONTROLLER (PLAINTEXT) for the KRaft quorum, which clients cannot use.
SCRAM-SHA-512 users are created at format time: `admin` (a super user) and `noacl` (no ACL at all).
The modules run as Ansible runs them (`ansible localhost -m ...`), and each failure must be a
message that names the cause and the fix: no traceback, and never the password.

The Kafka jars come from the kafka role's cache (<fraudstream_cache_dir>/kafka-<kafka_version>/libs),
or from FRAUDSTREAM_KAFKA_LIBS; without them (or without java) the test is skipped.
"""
import base64
import datetime
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from conftest import CACHE, ROOT, free_port, port_open

ADMIN_PASSWORD = "adm1n-" + uuid.uuid4().hex[:12]
NOACL_PASSWORD = "n0acl-" + uuid.uuid4().hex[:12]
WRONG_PASSWORD = "wr0ng-" + uuid.uuid4().hex[:12]
# Failures that must come quickly (a bootstrap that cannot succeed is retried until this).
FAST_TIMEOUT_MS = 4000


def kafka_libs():
    if os.environ.get("FRAUDSTREAM_KAFKA_LIBS"):
        return Path(os.environ["FRAUDSTREAM_KAFKA_LIBS"])
    version = yaml.safe_load((ROOT / "roles/kafka/defaults/main/main.yml").read_text())["kafka_version"]
    return CACHE / f"kafka-{version}" / "libs"


# -- certificates --------------------------------------------------------------------------------------
def make_certificates(folder):
    """ca.pem, and server.pem (PKCS#8 key + certificate, SAN 127.0.0.1 and localhost) signed by it;
    other-ca.pem, a CA that signed nothing here."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def ca(common):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(common)).issuer_name(name(common))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return key, cert

    ca_key, ca_cert = ca("fraudstream test CA")
    _, other_cert = ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("kafka-test")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                  x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (folder / "other-ca.pem").write_bytes(other_cert.public_bytes(pem))
    (folder / "server.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(pem) + ca_cert.public_bytes(pem))


# -- the broker ----------------------------------------------------------------------------------------
def server_properties(folder, port, controller_port):
    jaas = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
            'username="admin" password="%s";' % ADMIN_PASSWORD)
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(folder / "server.pem"),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(folder / "ca.pem"),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # ANONYMOUS: the broker itself on the PLAINTEXT controller listener (clients cannot use it).
        "super.users": "User:admin;User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": str(folder / "data"),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }


def java(libs, log4j, main_class, *args):
    return ["java", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*", main_class, *args]


def cluster_id():
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as kafka-storage random-uuid)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    libs = kafka_libs()
    if not any(libs.glob("kafka-clients-*.jar")):
        pytest.skip(f"no Kafka jars in {libs} (the kafka role caches them; or set FRAUDSTREAM_KAFKA_LIBS)")
    if not shutil.which("java"):
        pytest.skip("java is not installed")
    folder = tmp_path_factory.mktemp("secured-kafka")
    make_certificates(folder)
    port, controller_port = free_port(), free_port()
    props = folder / "server.properties"
    props.write_text("".join(f"{k}={v}\n" for k, v in server_properties(folder, port, controller_port).items()))
    (folder / "log4j2.properties").write_text(
        "appender.file.type=File\nappender.file.name=File\nappender.file.fileName=%s\n"
        "appender.file.layout.type=PatternLayout\nappender.file.layout.pattern=[%%d] %%p %%m (%%c)%%n\n"
        "rootLogger.level=INFO\nrootLogger.appenderRef.file.ref=File\n" % (folder / "server.log"))
    log4j = folder / "log4j2.properties"
    subprocess.run(java(libs, log4j, "kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(props),
                        "--add-scram", f"SCRAM-SHA-512=[name=admin,password={ADMIN_PASSWORD}]",
                        "--add-scram", f"SCRAM-SHA-512=[name=noacl,password={NOACL_PASSWORD}]"),
                   check=True, capture_output=True, text=True, timeout=60)
    out = (folder / "kafka.out").open("w")
    proc = subprocess.Popen(java(libs, log4j, "kafka.Kafka", str(props)), stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 40
        while not port_open(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the broker did not start:\n%s\n%s" % (
                    (folder / "kafka.out").read_text()[-3000:], (folder / "server.log").read_text()[-6000:]))
            time.sleep(0.3)
        yield {"port": port, "bootstrap": f"127.0.0.1:{port}", "folder": folder, "ca": folder / "ca.pem",
               "other_ca": folder / "other-ca.pem"}
    finally:
        proc.send_signal(signal.SIGTERM)  # the broker we started, by its PID
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        out.close()


# -- the modules, as Ansible runs them ----------------------------------------------------------------------
def ansible(module, args, *flags):
    """Run one module ad hoc (flags: --check, --diff); its result as the json callback reports it, and the raw output."""
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
           "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{ROOT / '.venv/bin'}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["ansible", "localhost", "-i", "localhost,", "-c", "local", "-e",
         f"ansible_python_interpreter={ROOT / '.venv/bin/python'}", "-m", f"fraudstream.platform.{module}",
         "-a", json.dumps(args), *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    report = proc.stdout[proc.stdout.index("\n{") + 1:] if not proc.stdout.startswith("{") else proc.stdout  # -vvv
    result = json.loads(report)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return result, output


def sasl_ssl(broker, user="admin", password=None, **kw):
    args = dict(bootstrap_servers=[broker["bootstrap"]], security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                sasl_username=user, sasl_password=ADMIN_PASSWORD if password is None else password,
                ssl_cafile=str(broker["ca"]), request_timeout_ms=FAST_TIMEOUT_MS)
    args.update(kw)
    return args


def assert_clean_failure(result, output, *fragments):
    assert result.get("failed") is True, result
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]
    for secret in (ADMIN_PASSWORD, NOACL_PASSWORD, WRONG_PASSWORD):
        assert secret not in output
    assert "Traceback" not in output and "Traceback" not in json.dumps(result)


def test_secured_broker(broker):
    """Right credentials create the topic; every wrong setting fails with its cause, at once."""
    topic = f"sec-{uuid.uuid4().hex[:8]}"
    result, output = ansible("kafka_topic", dict(sasl_ssl(broker), name=topic, partitions=2, replication_factor=1))
    assert result.get("changed") is True and result["topic"]["partitions"] == 2, result
    assert ADMIN_PASSWORD not in output
    assert result["invocation"]["module_args"]["sasl_password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"

    cases = {
        "wrong password": ("kafka_topic", dict(sasl_ssl(broker, password=WRONG_PASSWORD), name=topic),
                           ["cannot connect to Kafka: authentication failed",
                            "SASL SCRAM-SHA-512 login of user 'admin'", "wrong sasl_username or sasl_password"]),
        "PLAINTEXT client": ("kafka_topic_info", dict(bootstrap_servers=[broker["bootstrap"]], name=[topic],
                                                      request_timeout_ms=FAST_TIMEOUT_MS),
                             ["closed the connection before it answered",
                              "connected with PLAINTEXT to a TLS listener (SSL or SASL_SSL)?"]),
        "untrusted CA": ("kafka_topic_info", dict(sasl_ssl(broker, ssl_cafile=str(broker["other_ca"])), name=[topic]),
                         ["is not signed by a CA in the CA bundle ssl_cafile", "CERTIFICATE_VERIFY_FAILED"]),
        "user without ACLs": ("kafka_topic", dict(sasl_ssl(broker, "noacl", NOACL_PASSWORD), name=topic),
                              ["User:noacl is not authorized on the topic", "TopicAuthorizationFailedError",
                               "kafka-acls --add --allow-principal User:noacl --operation Describe"]),
        "group without ACLs": ("kafka_consumer_group_info",
                               dict(sasl_ssl(broker, "noacl", NOACL_PASSWORD), group="g", topics=[topic]),
                               ["User:noacl is not authorized on the group", "--group g"]),
        "no password": ("kafka_topic_info", dict(sasl_ssl(broker), name=[topic], sasl_password=""),
                        ["needs a user name and a password: set sasl_password (FRAUDSTREAM_KAFKA_SASL_PASSWORD)"]),
    }
    with ThreadPoolExecutor(len(cases) + 1) as pool:
        runs = {name: pool.submit(ansible, module, args) for name, (module, args, _) in cases.items()}
        # The info module reads the new topic over SASL_SSL too.
        described = pool.submit(ansible, "kafka_topic_info", dict(sasl_ssl(broker), name=[topic]))
    for name, (_, _, fragments) in cases.items():
        result, output = runs[name].result()
        assert_clean_failure(result, output, *fragments)
    result, _ = described.result()
    assert result["names"] == [topic] and result["topics"][topic]["partitions"] == 2, result


def test_kafka_user_sets_credentials_and_exactly_its_acls(broker):
    """kafka_user creates a SCRAM user with least-privilege ACLs, converges to changed=0, resets a
    changed password (checked by logging in), and removes the user; the password never shows."""
    user, first, second = f"u{uuid.uuid4().hex[:6]}", "f1rst-" + uuid.uuid4().hex[:10], "s3cond-" + uuid.uuid4().hex[:10]
    topic, other = f"acl-{uuid.uuid4().hex[:6]}", f"acl-other-{uuid.uuid4().hex[:6]}"
    for name in (topic, other):
        result, _ = ansible("kafka_topic", dict(sasl_ssl(broker), name=name, partitions=1, replication_factor=1))
        assert result.get("failed") is not True, result
    acls = [{"resource_type": "topic", "resource_name": topic, "operations": ["Write", "Describe", "DescribeConfigs"]},
            {"resource_type": "group", "resource_name": "g-" + user, "operations": ["Read"]}]
    wanted = dict(sasl_ssl(broker), name=user, password=first, acls=acls)

    planned, _ = ansible("kafka_user", wanted, "--check", "--diff")
    assert planned["changed"] is True and "set the SCRAM-SHA-512 credential" in planned["actions"], planned
    assert "ALLOW Write on topic %s (literal) from *" % topic in planned["diff"]["after"], planned
    created, output = ansible("kafka_user", wanted, "-vvv")
    assert created["changed"] is True and len(created["acls"]) == 4, created
    again, _ = ansible("kafka_user", wanted)
    assert again["changed"] is False, again

    # The ACLs hold: the user describes its topic, not the other one.
    as_user = sasl_ssl(broker, user, first)
    allowed, _ = ansible("kafka_topic_info", dict(as_user, name=[topic]))
    assert allowed.get("failed") is not True and allowed["names"] == [topic], allowed.get("msg")
    refused, refused_output = ansible("kafka_topic_info", dict(as_user, name=[other]))
    assert refused.get("failed") is True and f"User:{user} is not authorized on the topic" in refused["msg"], refused

    # A new password is noticed by logging in, and set; the old one stops working.
    reset, reset_output = ansible("kafka_user", {**wanted, "password": second})
    assert reset["changed"] is True and any("reset the SCRAM-SHA-512 password" in a for a in reset["actions"]), reset
    old, _ = ansible("kafka_topic_info", dict(as_user, name=[topic]))
    assert old.get("failed") is True and "authentication failed" in old["msg"], old

    # Fewer ACLs: the extra one goes; absent removes the rest and the credential.
    trimmed, _ = ansible("kafka_user", {**wanted, "password": second, "acls": acls[:1]})
    assert trimmed["changed"] is True and any(a.startswith("remove ALLOW Read on group") for a in trimmed["actions"])
    gone, _ = ansible("kafka_user", dict(sasl_ssl(broker), name=user, state="absent"))
    assert gone["changed"] is True and gone["acls"] == [], gone
    for out in (output, refused_output, reset_output, json.dumps([planned, created, again, reset, trimmed, gone])):
        assert first not in out and second not in out
