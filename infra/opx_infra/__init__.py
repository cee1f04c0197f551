"""The OPX AWS CDK app: one module per concern, composed by :mod:`opx_infra.stack`."""
