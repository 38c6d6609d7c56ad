"""What users see: the text and HTML report, the Gantt chart, the live dashboard.

Views read the run object and the plan; nothing below this package imports it.
ipywidgets and matplotlib are imported lazily, inside the functions that need them.
"""
