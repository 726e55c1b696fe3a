"""The Qt tray app and dashboard (PySide6).

The router runs in-process on its own thread (router_core/service.py RouterService).
app/bridge.py RouterBridge is the one seam to it: every call into the core goes through the
bridge on a worker thread, and core events come back through it as Qt signals.
"""
