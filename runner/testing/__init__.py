"""``flowrun test``: run a workflow's test cases through the real run path, offline."""
