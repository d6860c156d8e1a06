"""Tests of fleet serve."""
