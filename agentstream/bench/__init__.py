"""Measurement: `python -m agentstream bench` and `python -m agentstream load-test`.

The bench (`_main`, with its parts `_assembly`, `_clients`, `_serve`, `_report`) times
agentstream against comparators measured in the same run; the load test (`_loadtest`)
runs hundreds of agents at once against a faulty offline model and checks every
promise. Both may import the core and `agentstream.testing`; nothing in the core
imports them.
"""
