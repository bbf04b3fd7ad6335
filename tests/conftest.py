"""Fixtures every test folder may use; a folder's own conftest.py holds only what is its own.

Test boards, from least to most real: the local board, OpenSSH servers on loopback
(tests/support/sshd.py), the real adb client against an adbd stand-in (tests/standins/adbd.py).
"""

from tests.standins.adbd import adb_server, adbd_standin, adbd_standin_factory  # noqa: F401
from tests.support.board_fixtures import local_board, model_files, spec, ssh_board  # noqa: F401
from tests.support.model_fixtures import cli, cls_dataset, cls_model, fresh_cli, session_cache  # noqa: F401
from tests.support.sshd import ssh_client_key, ssh_home, sshd, sshd_factory  # noqa: F401
