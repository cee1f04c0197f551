"""OPX: advisory multi-agent incident root-cause analysis. Intelligence advises; humans decide."""

__version__ = "0.1.0"
