"""A stand-in for the Anthropic Messages API, for tests and benchmarks.

`simulator.config.SimConfig` describes one instance, `simulator.app.create_app(config)` builds
the ASGI app and `simulator.app.run(config)` serves it; `python -m simulator --help` lists the
command-line flags. Nothing here imports the rest of the project.
"""
