"""Helpers shared by the test modules. No tests live in this package.

Test modules import from here and never from one another, so a test file can be moved, renamed
or deleted without breaking another one.
"""
