"""Python tools for the fixture workflows of tests/test_flowrun_test.py."""


def read_sensor() -> str:
    raise RuntimeError("the rain sensor is unplugged")
