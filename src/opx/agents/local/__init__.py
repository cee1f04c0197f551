"""Deterministic local analysts (real algorithms, no model) and the numeric, graph, log and
trace helpers they share."""
