"""A small application the tests import: signals, receivers, and a signals module."""
