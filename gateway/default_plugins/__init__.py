"""Core behaviour shipped as plugins, through the same hooks a third party uses."""
