"""Python tools for workflows/city_weather.yaml.

Each function's keyword arguments are the tool's parameters; the return value is what the model
reads (a str as is, anything else as JSON). The values come from a small built-in table, so the
workflow runs anywhere, offline, with the same answers every time.
"""

from __future__ import annotations

# Typical early-afternoon temperature in °C and chance of rain, by city.
CITIES: dict[str, tuple[float, float]] = {
    "paris": (18.0, 0.35),
    "london": (15.5, 0.55),
    "berlin": (16.0, 0.40),
    "san francisco": (14.0, 0.06),
    "tokyo": (22.5, 0.30),
    "sydney": (20.0, 0.25),
}

UNITS = ("Celsius", "Fahrenheit")


def _city(location: str) -> tuple[float, float]:
    key = location.split(",")[0].strip().lower()
    if key not in CITIES:
        known = ", ".join(name.title() for name in CITIES)
        raise ValueError(f"no weather data for {location!r}; known cities: {known}")
    return CITIES[key]


def convert(value: float, from_unit: str = "Celsius", to_unit: str = "Fahrenheit") -> float:
    """A temperature in another unit, rounded to one decimal."""
    if from_unit not in UNITS or to_unit not in UNITS:
        raise ValueError(f"units must be one of {', '.join(UNITS)}")
    if from_unit == to_unit:
        return round(value, 1)
    if to_unit == "Fahrenheit":
        return round(value * 9 / 5 + 32, 1)
    return round((value - 32) * 5 / 9, 1)


def get_temperature(location: str, unit: str = "Celsius") -> float:
    """The current temperature at ``location`` ("Paris" or "Paris, France") in ``unit``."""
    celsius, _ = _city(location)
    return convert(celsius, "Celsius", unit)


def get_rain_probability(location: str) -> float:
    """The chance of rain today at ``location``, from 0 to 1."""
    return _city(location)[1]
