"""FAKE rknnlite for tests: see tests/device/fakes/README.md. Not the vendor library."""
