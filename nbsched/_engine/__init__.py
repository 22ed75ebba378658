"""The engine behind :class:`nbsched.Scheduler`: private; only ``scheduler.py`` imports it."""
