"""Tiny applications the delivery tests run under real servers (gunicorn)."""
