"""Our Kafka settings reach librdkafka under its own names, empty ones left out."""
from fraudstream.config import KafkaConfig
from fraudstream.sink import librdkafka_options


def test_plaintext_defaults():
    assert librdkafka_options(KafkaConfig()) == {"bootstrap.servers": "127.0.0.1:9092",
                                                 "security.protocol": "PLAINTEXT"}


def test_sasl_ssl_settings_pass_through():
    cfg = KafkaConfig(bootstrap_servers="b1:9093,b2:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                      sasl_username="scorer", sasl_password="s3cret", ssl_cafile="/ca.pem",
                      ssl_certfile="/cert.pem", ssl_keyfile="/key.pem")
    assert librdkafka_options(cfg) == {
        "bootstrap.servers": "b1:9093,b2:9093", "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "scorer", "sasl.password": "s3cret", "ssl.ca.location": "/ca.pem",
        "ssl.certificate.location": "/cert.pem", "ssl.key.location": "/key.pem"}
    assert "s3cret" not in repr(cfg), "the password never shows in a printed config"
