"""Tests of the agents: the local analysts and their helpers."""
