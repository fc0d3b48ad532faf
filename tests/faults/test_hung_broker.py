"""A broker that accepts connections and never answers (a hung JVM, or a port that is not Kafka's):
the scorer and the producer stay unready and say why, then give up after their start-up patience
with a message naming what they waited for, for their supervisor to restart them. The "broker" is
a socket that never replies, so no platform is needed."""
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import FRAUDSTREAM, free_port


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


def drill(args, patience, expect_ready, expect_exit, tmp_path):
    """Run a fraudstream command against the hung broker: /readyz must start with expect_ready
    while it waits, and it must exit non-zero, no sooner than `patience`, saying expect_exit."""
    metrics, log = free_port(), tmp_path / "app.log"
    started = time.monotonic()
    with open(log, "wb") as err:
        proc = subprocess.Popen([FRAUDSTREAM, *args, f"--metrics-port={metrics}",
                                 f"--startup-patience-seconds={patience}"], stdout=subprocess.DEVNULL, stderr=err)
    try:
        reason, deadline = "", time.monotonic() + patience + 60
        while not reason.startswith(expect_ready) and time.monotonic() < deadline and proc.poll() is None:
            try:
                reason = requests.get(f"http://127.0.0.1:{metrics}/readyz", timeout=5).text
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        assert reason.startswith(expect_ready), f"{reason!r}\n{log.read_text()[-2000:]}"
        rc = proc.wait(timeout=patience + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed, text = time.monotonic() - started, log.read_text()
    assert rc != 0
    assert f"gave up after {patience} s waiting for Kafka ({expect_exit})" in text, text[-2000:]
    assert "--bootstrap-servers" in text and "Traceback" not in text, text[-2000:]
    assert elapsed >= patience, "it gave up before its patience ran out"


def test_a_hung_broker_keeps_the_scorer_unready_then_it_exits_saying_why(hung_broker, model, tmp_path):
    port, accepted = hung_broker
    drill(["score", f"--bootstrap-servers=127.0.0.1:{port}", f"--model-dir={model}", "--group-id=hung-broker"],
          20, "not ready: waiting for Kafka (metadata of fraud-consumer-changelog)",
          "metadata of fraud-consumer-changelog", tmp_path)
    assert accepted, "the scorer never connected: this drill is about a broker that hangs, not one that refuses"


def test_a_hung_broker_keeps_the_producer_unready_then_it_exits_saying_why(hung_broker, tmp_path):
    """kafka-python gives up bootstrapping after about 30 s, so the patience is 40: one failure
    shows on /readyz, the next one exits."""
    port, accepted = hung_broker
    drill(["produce", f"--bootstrap-servers=127.0.0.1:{port}"], 40, "not ready: reading where to resume",
          "reading where to resume", tmp_path)
    assert accepted, "the producer never connected"
