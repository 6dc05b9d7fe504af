"""Each probing method's registration: its steps, summary section, report views and series curve."""
