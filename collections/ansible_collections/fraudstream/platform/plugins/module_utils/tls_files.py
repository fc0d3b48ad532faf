# Copyright: fraudstream contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the TLS file options (CA bundle, client certificate and key) before any connection.

Shared by the Kafka and the Prometheus connection options, so both say the same thing: which
option, which path, and what to change.
"""
from __future__ import annotations

import os


def is_readable(path):
    return os.access(path, os.R_OK)


def tls_file_problems(params, files, env_name, isfile=os.path.isfile, readable=is_readable):
    """[messages] for the TLS files that are set but missing or unreadable on the managed host.

    files: ((option, what the file is), ...); env_name(option): the environment variable the
    option falls back to. isfile and readable are replaceable for tests.
    """
    errors = []
    for key, what in files:
        path = params.get(key)
        if not path:
            continue
        if not isfile(path):
            errors.append("%s '%s' does not exist or is not a file: set %s (%s) to the path of %s on the host "
                          "the module runs on" % (key, path, key, env_name(key), what))
        elif not readable(path):
            errors.append("%s '%s' is not readable by the user the module runs as: make it readable, or run "
                          "the task as a user who can read it" % (key, path))
    return errors
