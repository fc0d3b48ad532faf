"""AWS tests against moto. A package, so that its conftest.py does not take over the name `conftest`
(tests/conftest.py's, which other tests import)."""
