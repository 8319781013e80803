"""What the benchmarks share: statistics, process meters, start-up of the processes they
measure, SDK clients and their output."""
