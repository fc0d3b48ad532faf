"""A broker that accepts connections and never answers (a hung JVM, or a port that is not Kafka's):
the scorer stays unready and says why, then gives up after its start-up patience with a message
naming what it waited for, for its supervisor to restart it. The "broker" is a socket that never
replies, so no platform is needed."""
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import FRAUDSTREAM, free_port

PATIENCE = 20


@pytest.fixture
def hung_broker():
    """127.0.0.1:<port> that accepts every connection and never sends a byte; yields (port, accepted)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:  # closed at teardown
                return

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1], accepted
    listener.close()
    for conn in accepted:
        conn.close()


def test_a_hung_broker_keeps_the_scorer_unready_then_it_exits_saying_why(hung_broker, model, tmp_path):
    port, accepted = hung_broker
    metrics, log = free_port(), tmp_path / "scorer.log"
    started = time.monotonic()
    with open(log, "wb") as err:
        proc = subprocess.Popen([FRAUDSTREAM, "score", f"--bootstrap-servers=127.0.0.1:{port}", f"--model-dir={model}",
                                 f"--metrics-port={metrics}", f"--startup-patience-seconds={PATIENCE}",
                                 "--group-id=hung-broker"], stdout=subprocess.DEVNULL, stderr=err)
    try:
        reason, deadline = "", time.monotonic() + 60
        while "waiting for Kafka" not in reason and time.monotonic() < deadline and proc.poll() is None:
            try:
                reason = requests.get(f"http://127.0.0.1:{metrics}/readyz", timeout=5).text
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        assert reason.startswith("not ready: waiting for Kafka (metadata of fraud-consumer-changelog)"), \
            f"{reason!r}\n{log.read_text()[-2000:]}"
        assert accepted, "the scorer never connected: this drill is about a broker that hangs, not one that refuses"
        rc = proc.wait(timeout=PATIENCE + 90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed, text = time.monotonic() - started, log.read_text()
    assert rc != 0
    assert f"gave up after {PATIENCE} s waiting for Kafka (metadata of fraud-consumer-changelog)" in text, text[-2000:]
    assert "--bootstrap-servers" in text and "Traceback" not in text, text[-2000:]
    assert elapsed >= PATIENCE, "it gave up before its patience ran out"
