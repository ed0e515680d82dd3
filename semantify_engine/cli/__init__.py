"""The ``semantify`` command line (``semantify --help``)."""
