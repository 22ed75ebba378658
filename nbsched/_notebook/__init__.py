"""The parts of :mod:`nbsched.runner` (imported by it only): parameter cells, the output
notebook's marks and saves, and one run of a notebook in a kernel of its own."""
