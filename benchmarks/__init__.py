"""Benchmarks: `make bench`. Each figure is a ratio against a baseline measured in the
same run (wire time at 115200 baud, or the heap it was given), never a bare time."""
