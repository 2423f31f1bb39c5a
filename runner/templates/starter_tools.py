"""Python tools for the {name} workflow. Each function's keyword arguments are the tool's
parameters; its return value is what the model reads (str as is, anything else as JSON)."""


def add(a: float, b: float) -> float | int:
    total = a + b
    return int(total) if float(total).is_integer() else total
