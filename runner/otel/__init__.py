"""OpenTelemetry traces of runs (the optional ``flowrun[otel]`` extra), after the GenAI conventions.

Nothing imports this package unless tracing is asked for (``--otel``, ``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``flowrun logs export --otlp``).
"""

MISSING_HINT = "install the extra: pip install 'flowrun[otel]'"

