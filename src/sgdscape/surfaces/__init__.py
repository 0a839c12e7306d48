"""What users touch: the command line, the web app, the Jupyter widget, exports, the benchmarks.

The top layer; nothing in sgdscape imports it except the package's lazy ``explore``.
"""
