"""newsletter: write, preview and send a members' e-bulletin from Markdown."""

__version__ = "0.1.0"
