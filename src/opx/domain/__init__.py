"""The contracts every part of OPX speaks: pydantic models and enums, no I/O."""
