"""Tests of the example third-party plugin's platforms, through their sandboxes and the gateway."""
