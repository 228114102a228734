"""A small Django app for the tests: one model, one view."""
