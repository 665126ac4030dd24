"""raftlog's benchmark harness: `python -m benches [--quick] [--only NAME] [--json PATH]`.

Each scenario is a module `benches/<name>.py` with `run(settings: Settings) ->
list[Result]`, listed in `benches/__main__.py:SCENARIOS`. Every result is measured
next to its ceiling (the best the machine or a peer does at the same job, measured in
the same run), because absolute numbers drift between machines.
"""
