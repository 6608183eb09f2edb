"""Prefect flows of redes: data, training runs, studies, schedules.

Importing the package changes nothing in the environment: each flow applies the offline
defaults (:mod:`runtime.environment`) when it starts, and the `redes` command before it runs.
"""
