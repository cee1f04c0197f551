"""Delivery: putting a finished execution's outcome where humans see it (EventBridge, SNS)."""
