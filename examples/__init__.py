"""Runnable examples: `python examples/NAME.py`; a package only so tests can import them."""
