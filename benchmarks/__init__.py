"""tocsin's benchmark suite: tocsin against django.dispatch, blinker, psygnal and a floor.

Run it with ``python -m benchmarks`` (``--quick`` for a smoke run); see README.md here.
"""
