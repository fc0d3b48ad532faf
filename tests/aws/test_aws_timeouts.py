"""An AWS endpoint that accepts connections but never answers: the modules give up after
read_timeout per attempt and max_attempts attempts, and say which endpoint, how long and what
to check (fraudstream.platform's module_utils/aws.py sets botocore's timeouts and retries)."""
import socket
import threading
import time

import pytest

from .test_eks_cluster_info import REGION, run_module


@pytest.fixture
def silent_endpoint():
    """(URL, accepted connections) of a 127.0.0.1 server that accepts every connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)  # so that the thread sees `done` soon
    accepted, done = [], threading.Event()

    def accept():
        while not done.is_set():
            try:
                connection, dummy = server.accept()
            except TimeoutError:
                continue
            accepted.append(connection)  # kept open, never read from or written to

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % server.getsockname()[1], accepted
    finally:
        done.set()
        thread.join(timeout=10)
        server.close()
        for connection in accepted:
            connection.close()


@pytest.fixture
def aws_env_without_moto(monkeypatch, tmp_path):
    """Dummy credentials and nothing from ~/.aws or instance metadata, as aws_env has, without a moto server."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": str(tmp_path / "aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "creds"),
            "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.mark.parametrize("module, args", [
    ("eks_cluster_info", {"name": "fs"}),
    ("aws_leftovers", {"cluster_name": "fs"}),
])
def test_an_endpoint_that_never_answers_fails_soon_and_is_named(silent_endpoint, aws_env_without_moto, module, args):
    url, accepted = silent_endpoint
    started = time.monotonic()
    code, result = run_module(module, dict(args, region=REGION, endpoint_url=url, read_timeout=2, max_attempts=2),
                              aws_env_without_moto)
    took = time.monotonic() - started
    assert code != 0 and result.get("failed"), result
    message = result["msg"]
    assert "the AWS endpoint %s/" % url in message, message  # the URL of the request that timed out
    assert "accepted the connection but did not answer within 2 s (read_timeout, 2 attempts)" in message, message
    assert "endpoint_url is '%s'" % url in message and "raise read_timeout or max_attempts" in message, message
    assert len(accepted) == 2, "max_attempts=2 should mean 2 connections, got %d" % len(accepted)
    assert took < 120, "took %.0f s" % took
