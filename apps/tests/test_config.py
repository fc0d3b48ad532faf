"""KafkaConfig reads a password file once, and names the setting and the fix when it cannot."""
import pytest

from fraudstream.config import KafkaConfig
from fraudstream.sink import librdkafka_options


def test_the_password_comes_from_its_file_and_stays_out_of_repr(tmp_path):
    secret = tmp_path / "producer"
    secret.write_text("s3cret-value\n")
    kafka = KafkaConfig(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="producer",
                        sasl_password_file=str(secret))
    assert kafka.client_options()["sasl_plain_password"] == "s3cret-value"
    assert librdkafka_options(kafka)["sasl.password"] == "s3cret-value"
    assert "s3cret-value" not in repr(kafka)


@pytest.mark.parametrize("content, fragment", [(None, "cannot be read"), ("\n", "is empty")])
def test_a_missing_or_empty_password_file_names_the_setting(tmp_path, content, fragment):
    secret = tmp_path / "producer"
    if content is not None:
        secret.write_text(content)
    with pytest.raises(ValueError, match=fragment) as err:
        KafkaConfig(sasl_password_file=str(secret))
    assert "FRAUDSTREAM_SASL_PASSWORD_FILE" in str(err.value)
