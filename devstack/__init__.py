"""Development tooling, never part of an image: `make run`'s launcher, the bundled Redis
server, and `running_stack`, which starts part of the suite for the end-to-end tests and
the benchmarks."""
