"""The read-only telemetry tools ("action groups") and the sources behind them."""
