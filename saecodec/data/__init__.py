"""Data: simulated SAS frames (sasmodels) and readers for real measured frames."""
