"""A sub-application of the sample app, with a signals module of its own."""
