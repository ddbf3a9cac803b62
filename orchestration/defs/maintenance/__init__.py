"""Maintenance domain: retention of generated report files."""
