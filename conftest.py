# The whole suite, wherever its tests live, gets real Kafka and Postgres and the guards.
pytest_plugins = ["egis_localinfra.pytest_plugin", "pytester"]
