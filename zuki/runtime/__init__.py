"""zuki.runtime: tasks, wakers, worker threads and the two executors.

The public names are re-exported from ``zuki``; import them from there.
"""
