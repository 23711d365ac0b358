"""The benchmark of issue 6: run with ``bench/run`` (see bench/README.md). Not part of the test suite."""
