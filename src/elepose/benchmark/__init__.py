"""The benchmark runner behind ``elepose benchmark``: plan, train, evaluate, time, report."""
