"""Turn the operations of an OpenAPI description into flowrun ``http`` tools.

``document`` reads and checks the spec, ``schemas`` turns its schemas into self-contained JSON
Schemas, ``operations`` lists and selects operations, ``tools`` builds one tool per operation, and
``writer`` splices the tools into a workflow file without disturbing the rest of it. Only
``flowrun import openapi`` imports this package: the run path and ``validate`` never do.
"""
