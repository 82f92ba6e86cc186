"""Loihi numerics shared by the Loihi passes and backends: the chip's limits, NengoLoihi's
float parameters of a chip population, their discretization to the chip's integers, and the
partition of populations into core blocks (papers.md Part B)."""
