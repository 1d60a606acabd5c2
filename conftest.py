# The whole suite, wherever its tests live, gets real Kafka and Postgres and the guards,
# and one in-process ledger and one signal_router for the tests of any service that needs them.
pytest_plugins = ["egis_localinfra.pytest_plugin", "pytester", "ledger.testing", "signal_router.testing"]
