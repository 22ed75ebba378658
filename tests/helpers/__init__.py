"""Helpers for the tests (no fixtures here: those live in the conftest files).

* ``wait``: :func:`~tests.helpers.wait.wait_for`, the one bounded wait on a condition.
* ``env``: the isolated Jupyter environment (HOME, JUPYTER_*, IPYTHONDIR under one root).
* ``kernels``: real kernels through jupyter_client, for ipykernel 7 and 6
  (:class:`~tests.helpers.kernels.KernelHarness`, :class:`~tests.helpers.kernels.Kernels`).
* ``processes``: find, wait for and kill the processes jobs start (psutil).
* ``shell``: an in-process IPython shell for fast magic tests.
* ``ipk6_env``: builds the ipykernel 6 virtualenv.

Nothing here imports pytest, so that a plain subprocess (a kernel's launcher that a test
kills) can use it too.
"""
