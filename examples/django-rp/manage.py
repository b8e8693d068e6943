#!/usr/bin/env python3
"""The example application's manage.py: `python manage.py migrate`, then `python manage.py runserver`."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rp.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
