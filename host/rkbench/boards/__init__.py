"""Talking to boards: addresses, transports (ssh, adb, local), deploy, sessions."""
