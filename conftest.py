# The whole suite, wherever its tests live, gets real Kafka and Postgres and the guards,
# and one in-process ledger for the tests of any service that needs it.
pytest_plugins = ["egis_localinfra.pytest_plugin", "pytester", "ledger.testing"]
