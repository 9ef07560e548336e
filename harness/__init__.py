"""Helpers shared by the engine tests and the benchmarks: scratch copies of the project run by the real CLI."""
