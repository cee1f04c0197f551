"""Accuracy evaluation of OPX on public root-cause datasets (``opx eval …``)."""
