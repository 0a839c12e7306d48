"""Pictures of runs and network recordings: matplotlib, Plotly, animations, overlays.

Above :mod:`sgdscape.records`, below :mod:`sgdscape.surfaces`.
"""
