"""Study scripts: each has a frozen dataclass of arguments and ``main(args) -> results``, and runs as a sweep target."""
