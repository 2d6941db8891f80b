"""Tools a deployer's package might expose through the `agentmill.tools` entry points."""

from __future__ import annotations

from agents.tools import tool


def get_weather(city: str, days: int = 1) -> str:
    """Forecast for a city.

    Args:
        city: City name.
        days: How many days ahead.
    """
    return f"{city}: sunny for {days} day(s)"


def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


def whisper(text: str) -> str:
    """Lower-case the text."""
    return text.lower()


TEXT_TOOLS = [shout, whisper]
"""An entry point may name a list of functions."""

SLOW_WEATHER = tool(get_weather, name="slow_weather", timeout_s=2.5)
"""An entry point may name a ready Tool, for a custom name or timeout."""

NOT_A_TOOL = 42
"""What an entry point must not name."""
