"""Shared pytest plugins: the local DynamoDB server fixtures."""

pytest_plugins = ["tests.fixtures_servers"]
