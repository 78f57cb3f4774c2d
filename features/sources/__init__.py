"""Sources: everything that produces readings/events in the contract's columns.

simulator.py ─┐
cmapss.py    ─┼─► (readings, events) in features.contract columns ─► validation
tabular.py   ─┘
"""
