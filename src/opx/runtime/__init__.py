"""Running executions: event intake, the execute() entry point and its policies."""
