"""flowrun: run LLM assistants whose tools are declared in a YAML file."""

__version__ = "0.1.0"
