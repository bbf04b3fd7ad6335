"""Boards: where they are and how to reach them, what is on them, and whether they are fit.

address.py    --board strings: ip, user@host:port, ssh://, adb:SERIAL, adb://, local
transport/    the Transport seam (base.py) and its ssh, adb and local implementations
labgrid.py    labgrid:PLACE: acquire a place, reach its NetworkService, release it
deploy.py     content-addressed blobs and the runner onto the board (only what is missing)
health.py     `board info` and `doctor`: facts about a board, checks with fixes
provision.py  offline install of rknn-toolkit-lite2 (and librknnrt) onto a board
runtime.py    the board's librknnrt version, read with one command
"""
