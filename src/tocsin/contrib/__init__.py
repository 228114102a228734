"""Integrations: each module sends tocsin's built-in signals from an outside library.

Each is an optional extra (``pip install tocsin[sqlalchemy]``) and imports its library;
the core never imports them.
"""
